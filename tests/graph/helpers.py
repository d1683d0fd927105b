"""Helpers of the graph tests: a topic tap (reads topics from the start, waits for matching messages),
services run in this process, tenant clean-up, and direct Neo4j look-ups."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI

from moe_core.knowledge.graph import GraphDB
from moe_core.runtime.bus import Bus
from tests.support.topic_reader import TopicReader

Where = Callable[[dict[str, Any]], bool]

PURGE = """
CALL () { MATCH (e:Entity {tenant: $tenant}) DETACH DELETE e }
CALL () { MATCH (a:AliasKey {tenant: $tenant}) DETACH DELETE a }
CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() DELETE r }
CALL () { MATCH (q:Quarantine {tenant: $tenant}) DELETE q }
CALL () { MATCH (s:Synthesis {tenant: $tenant}) DETACH DELETE s }
CALL () { MATCH (v:GraphVersion {tenant: $tenant}) DELETE v }
CALL () { MATCH (g:OntologyGap {tenant: $tenant}) DELETE g }
"""

TENANT_RELATIONS = """
MATCH (a:Entity)-[r:REL {tenant: $tenant}]->(b:Entity)
RETURN r.id AS id, a.name AS subject, r.type AS type, b.name AS object, r.source AS source, r.trust AS trust,
       r.version AS version, r.assertions AS assertions, r.verified AS verified, r.flagged AS flagged,
       r.domain AS domain, r.response_id AS response_id, a.tenant AS subject_tenant, b.tenant AS object_tenant
ORDER BY a.name, r.type, b.name
"""


async def run_in_process(stack: AsyncExitStack, apps: Iterable[FastAPI], bus: Bus, tap: TopicTap) -> None:
    """Each service app's lifespan, the test's bus and its topic tap, started on `stack` (stopped with it)."""
    for app in apps:
        await stack.enter_async_context(app.router.lifespan_context(app))
    await bus.broker.start()
    stack.push_async_callback(bus.broker.stop)
    await tap.start()
    stack.push_async_callback(tap.stop)


async def purge(db: GraphDB, tenant: str) -> None:
    await db.write(PURGE, tenant=tenant)


async def relations(db: GraphDB, tenant: str) -> list[dict[str, Any]]:
    return await db.read(TENANT_RELATIONS, tenant=tenant)


def titles(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['subject']} {r['type']} {r['object']}" for r in rows]


class TopicTap(TopicReader):
    """The shared topic reader with explicit start/stop, for session-scoped graph fixtures."""

    async def start(self) -> None:
        await self.__aenter__()

    async def stop(self) -> None:
        await self.__aexit__()

    def seen(self, topic: str, where: Where | None = None) -> list[dict[str, Any]]:
        return self.on(topic, where)
