"""The consumer's work for one Kafka record: store it in the audit chain, derive its lineage events, store
them and hand them to the configured extra transport. Offsets are committed after this returns."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from openlineage.client import OpenLineageClient

from codex_lineage.lineage import Lineage
from moe_core.audit.records import AuditRecord, from_kafka, message_types
from moe_core.audit.store import AuditStore
from moe_core.contracts import Topics, headers
from moe_core.runtime.observability.metrics import (
    LINEAGE_BATCH_RECORDS,
    LINEAGE_EVENTS,
    LINEAGE_LAG,
    LINEAGE_RECORDS,
    PRODUCER_REFUSED,
)
from moe_core.runtime.producer_signing import ProducerRefused, ProducerVerifier

log = logging.getLogger(__name__)


def extra_client(config: str) -> OpenLineageClient | None:
    """openlineage-python's own transports from a JSON transport config (http, kafka, file, console, ...)."""
    if not config.strip():
        return None
    transport = json.loads(config)
    if not isinstance(transport, dict) or "type" not in transport:
        raise ValueError("MOE_LINEAGE_TRANSPORT must be a JSON object with a 'type' (http, kafka, file, console)")
    return OpenLineageClient(config={"transport": transport})


Refuse = Callable[[Any, ProducerRefused], Awaitable[None]]  # a refused record: dead-lettered with its reason


class Recorder:
    """`producers`: the producers' keys (MOE_PRODUCER_KEYS); with them a record is stored only when a declared
    producer of its topic signed it, and the record names that signer as its producer (`stage`, in the signed
    entry); any other goes to `refuse` (dead-lettered with the reason by codex-lineage, counted, never stored)."""

    def __init__(self, topics: Topics, store: AuditStore, lineage: Lineage,
                 client: OpenLineageClient | None = None, producers: ProducerVerifier | None = None,
                 refuse: Refuse | None = None) -> None:
        self.types = message_types(topics)
        self.prefix = topics.requests.removesuffix("requests.v1")
        self.store = store
        self.lineage = lineage
        self.client = client
        self.producers = producers
        self.refuse = refuse

    def parse(self, raw: Any) -> AuditRecord | None:
        """The record; ProducerRefused when the producers' keys are checked and no declared producer signed it."""
        hdrs = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                for k, v in (getattr(raw, "headers", None) or [])}
        if self.producers is not None:
            hdrs[headers.PRODUCER] = self.producers.check(raw.topic, raw.key, raw.value, hdrs)  # the proven signer
        return from_kafka(raw.topic, raw.partition, raw.offset, raw.timestamp, raw.key, raw.value, hdrs, self.types)

    def _parsed(self, raws: list[Any]) -> tuple[list[AuditRecord], list[tuple[Any, ProducerRefused]]]:
        """The records to store, and those refused (dead-lettered only once the others are stored: a batch held
        while the store is down sends no dead letter it would send again when it is fetched again)."""
        records: list[AuditRecord] = []
        refused: list[tuple[Any, ProducerRefused]] = []
        for raw in raws:
            try:
                record = self.parse(raw)
            except ProducerRefused as exc:
                refused.append((raw, exc))
                continue
            if record is not None:
                records.append(record)
        return records, refused

    async def _refuse(self, refused: list[tuple[Any, ProducerRefused]]) -> None:
        for raw, finding in refused:
            PRODUCER_REFUSED.labels("codex-lineage", self._kind(raw.topic), finding.reason).inc()
            log.error("REFUSED to record %s/%s/%s: %s", raw.topic, raw.partition, raw.offset, finding)
            if self.refuse is not None:
                await self.refuse(raw, finding)

    async def record(self, raw: Any) -> None:
        records, refused = self._parsed([raw])
        if records:
            await self.write(records[0])
            self._lag(records)
        await self._refuse(refused)

    async def record_batch(self, raws: list[Any]) -> None:
        """A consumer batch in one transaction (one commit per batch keeps up with the topics)."""
        records, refused = self._parsed(raws)
        if records:
            await self.write_batch(records)
            LINEAGE_BATCH_RECORDS.observe(len(records))
            self._lag(records)
        await self._refuse(refused)

    async def write_batch(self, records: list[AuditRecord]) -> None:
        items = [(record, self.lineage.events(record)) for record in records]
        added = await self.store.append_many(items)
        for record, events in items:
            self._count(record, events)
        if self.client is not None and added:
            await asyncio.to_thread(self._emit, [e for _, events in items for e in events])

    def _lag(self, records: list[AuditRecord]) -> None:
        for record in records:
            LINEAGE_LAG.labels(self._kind(record.topic)).set(max(0.0, time.time() - record.broker_ts.timestamp()))

    async def write(self, record: AuditRecord) -> None:
        events = self.lineage.events(record)
        _, added = await self.store.append(record, events)  # one transaction: record and its events
        self._count(record, events)
        if self.client is not None and added:
            await asyncio.to_thread(self._emit, events)

    def _count(self, record: AuditRecord, events: list[dict[str, Any]]) -> None:
        LINEAGE_RECORDS.labels(record.stage, self._kind(record.topic)).inc()
        for event in events:
            LINEAGE_EVENTS.labels(event["job"]["name"].split(".")[0], event.get("eventType") or "OTHER").inc()

    def _emit(self, events: list[dict[str, Any]]) -> None:
        assert self.client is not None
        for event in events:
            try:
                self.client.emit(self.lineage.run_event(event))
            except Exception:  # an outside lineage backend being down must not stop the audit trail
                log.exception("the extra OpenLineage transport failed")

    def _kind(self, topic: str) -> str:
        return topic.removeprefix(self.prefix).removesuffix(".v1")
