"""codex-lineage's side of the checkpoints: its signing key, the timestamp authority, the outlets (the
checkpoint topic, keyed by tenant, and the append-only file) and the periodic loop."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from codex_lineage.settings import LineageSettings
from moe_audit_verify.timestamps import TsaChain
from moe_core.audit.checkpoints import UNWITNESSED, Anchoring, Outlet, checkpoint_all, file_outlet, published_heads
from moe_core.audit.cutover import origins
from moe_core.audit.keyring import read_keyring
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.tree import TreeKeeper
from moe_core.audit.tsa import TsaClient
from moe_core.audit.verify import load_witness
from moe_core.audit.witness import WitnessClient
from moe_core.contracts import AuditCheckpoint, headers
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.observability.metrics import AUDIT_CHECKPOINTS

log = logging.getLogger(__name__)


def tsa_client(settings: LineageSettings) -> TsaClient | None:
    if not settings.audit_tsa_url:
        return None
    chain = TsaChain(Path(settings.audit_tsa_chain).read_bytes()) if settings.audit_tsa_chain else None
    return TsaClient(settings.audit_tsa_url, chain, settings.audit_tsa_timeout_s)


def encoded(record: dict[str, Any], producer: str) -> tuple[bytes, bytes, dict[str, str]]:
    """A checkpoint as a Kafka message of the checkpoint topic: value, key (the tenant), headers."""
    message = AuditCheckpoint.model_validate(record)  # the declared shape (schemas/AuditCheckpoint.schema.json)
    value = json.dumps(message.model_dump(mode="json", exclude_unset=True), sort_keys=True).encode()
    return value, message.checkpoint.tenant_id.encode(), {headers.MESSAGE_TYPE: "AuditCheckpoint",
                                                          headers.PRODUCER: producer}


def kafka_outlet(bus: Bus) -> Outlet:
    async def publish(record: dict[str, Any]) -> None:
        value, key, hdrs = encoded(record, bus.settings.service_name)
        topic = bus.topics.audit_checkpoints
        await bus.send_record(topic, key, value, bus.signed(topic, key, value, hdrs))

    return publish


def anchoring_for(settings: LineageSettings, bus: Bus | None, signer: Signer,
                  outlets: list[Outlet] | None = None) -> Anchoring:
    outlets = list(outlets or []) + ([kafka_outlet(bus)] if bus is not None else [])
    published: dict[str, dict[str, Any]] = {}
    logs: dict[str, str] = {}
    if settings.audit_checkpoint_file:
        outlets.append(file_outlet(settings.audit_checkpoint_file))
        published = published_heads(settings.audit_checkpoint_file)  # what the database must still hold
        logs = origins(settings.audit_checkpoint_file)  # the tenants cut over to a new log
    ring = read_keyring(Path(settings.audit_keyring)) if settings.audit_keyring else None  # retired keys too
    return Anchoring(signer, tsa_client(settings), outlets, published, ring, witness=witness_client(settings),
                     log_name=settings.audit_log_name, origins=logs,
                     trees=TreeKeeper(recheck_s=settings.audit_tree_recheck_s))


def witness_client(settings: LineageSettings) -> WitnessClient | None:
    if not settings.audit_witness_url:
        return None
    if not settings.audit_witness_key:
        raise ValueError("MOE_AUDIT_WITNESS_URL is set without MOE_AUDIT_WITNESS_KEY (the witness's vkey, or a file "
                         "holding it): its cosignatures could not be checked")
    key = load_witness(settings.audit_witness_key)
    assert key is not None  # checked above
    return WitnessClient(settings.audit_witness_url, key)


@asynccontextmanager
async def standalone_anchoring(settings: LineageSettings, signer: Signer, topic: str) -> AsyncIterator[Anchoring]:
    """The same outlets for a command outside the service (replay export closing a period): its own producer."""
    producer = AIOKafkaProducer(**client_kwargs(settings), client_id="moe-replay")
    await producer.start()

    async def publish(record: dict[str, Any]) -> None:
        value, key, hdrs = encoded(record, settings.service_name)
        await producer.send_and_wait(topic, value, key=key, headers=[(k, v.encode()) for k, v in hdrs.items()])

    try:
        yield anchoring_for(settings, None, signer, [publish])
    finally:
        await producer.stop()


async def checkpoint_loop(settings: LineageSettings, store: AuditStore, anchoring: Anchoring) -> None:
    """Every interval: a checkpoint of each tenant whose chain grew (or whose last one is older than the max age).
    A failure (the authority unreachable) is logged and retried at the next interval: nothing is stored then."""
    max_age = timedelta(seconds=settings.audit_checkpoint_max_age_s)
    while True:
        await asyncio.sleep(settings.audit_checkpoint_interval_s)
        try:
            made, refused = await checkpoint_all(store, anchoring, max_age, settings.audit_checkpoint_interval_s)
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop must outlive a TSA or broker outage
            log.exception("could not checkpoint the audit chains; retrying in %.0f s",
                          settings.audit_checkpoint_interval_s)
            AUDIT_CHECKPOINTS.labels("failed").inc()
            continue
        for _ in made:
            AUDIT_CHECKPOINTS.labels("made").inc()
        for reason in refused:  # the database was changed under codex-lineage: an operator must look now
            if UNWITNESSED in reason:  # the witness unreachable or the log not provisioned yet: asked again
                log.error("NOT WITNESSED: %s", reason)
                AUDIT_CHECKPOINTS.labels("unwitnessed").inc()
                continue
            log.error("REFUSED to checkpoint: %s", reason)
            AUDIT_CHECKPOINTS.labels("refused").inc()


async def final_checkpoint(settings: LineageSettings, store: AuditStore, anchoring: Anchoring,
                           timeout_s: float = 15.0) -> None:
    """At shutdown: a checkpoint of every tenant that grew since its last one, so that entries no checkpoint covers
    are not left behind with the memory of what this process wrote (an outage of the broker, the TSA or the witness
    is logged, not waited for beyond `timeout_s`)."""
    max_age = timedelta(seconds=settings.audit_checkpoint_max_age_s)
    try:
        made, refused = await asyncio.wait_for(checkpoint_all(store, anchoring, max_age), timeout_s)
    except Exception:  # shutting down: report, never hang or raise
        log.exception("could not make the final checkpoints at shutdown")
        AUDIT_CHECKPOINTS.labels("failed").inc()
        return
    for _ in made:
        AUDIT_CHECKPOINTS.labels("made").inc()
    for reason in refused:
        log.error("REFUSED to checkpoint at shutdown: %s", reason)
