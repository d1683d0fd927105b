"""Helpers of the graph tests: a topic tap (reads topics from the start, waits for matching messages),
tenant clean-up, and direct Neo4j look-ups."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from moe_core.graph import GraphDB

Where = Callable[[dict[str, Any]], bool]

PURGE = """
CALL () { MATCH (e:Entity {tenant: $tenant}) DETACH DELETE e }
CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() DELETE r }
CALL () { MATCH (q:Quarantine {tenant: $tenant}) DELETE q }
CALL () { MATCH (s:Synthesis {tenant: $tenant}) DETACH DELETE s }
CALL () { MATCH (v:GraphVersion {tenant: $tenant}) DELETE v }
"""

TENANT_RELATIONS = """
MATCH (a:Entity)-[r:REL {tenant: $tenant}]->(b:Entity)
RETURN r.id AS id, a.name AS subject, r.type AS type, b.name AS object, r.source AS source, r.trust AS trust,
       r.version AS version, r.assertions AS assertions, r.verified AS verified, r.flagged AS flagged,
       r.domain AS domain, r.response_id AS response_id, a.tenant AS subject_tenant, b.tenant AS object_tenant
ORDER BY a.name, r.type, b.name
"""


async def purge(db: GraphDB, tenant: str) -> None:
    await db.write(PURGE, tenant=tenant)


async def relations(db: GraphDB, tenant: str) -> list[dict[str, Any]]:
    return await db.read(TENANT_RELATIONS, tenant=tenant)


def titles(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['subject']} {r['type']} {r['object']}" for r in rows]


class TopicTap:
    """Reads topics from the earliest offset without a group and keeps every message."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.records: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(*self.topics, bootstrap_servers=self.bootstrap, group_id=None,
                                          auto_offset_reset="earliest", enable_auto_commit=False,
                                          fetch_max_wait_ms=10, metadata_max_age_ms=1000)
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        """Wait for the reader to stop before closing the consumer; a slow broker at teardown is not a failure."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(KafkaError):
                await self._consumer.stop()

    async def _read(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            async with self._changed:
                self.records.append((record.topic, json.loads(record.value)))
                self._changed.notify_all()

    def seen(self, topic: str, where: Where | None = None) -> list[dict[str, Any]]:
        return [body for t, body in self.records if t == topic and (where is None or where(body))]

    async def wait(self, topic: str, where: Where | None = None, count: int = 1,
                   timeout_s: float = 30) -> list[dict[str, Any]]:
        async def until() -> list[dict[str, Any]]:
            async with self._changed:
                while len(found := self.seen(topic, where)) < count:
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(until(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"{count} message(s) on {topic} did not arrive; seen: {self.seen(topic)[-5:]}") \
                from None
