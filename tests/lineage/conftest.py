"""A lean fleet for the audit and lineage journeys: gateway, planner, expert-worker, merger and codex-lineage
(own topic namespace, own audit schema in Postgres, scripted models), plus keys of two tenants and an admin."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from gateway.keystore import KeyStore
from tests.conftest import Scripted, scripted_env
from tests.support.fleet import REPO, Fleet
from tests.support.namespaces import new_namespace

SERVICES = ("gateway", "planner", "expert-worker", "merger", "codex-lineage")


@dataclass
class LineageFleet:
    fleet: Fleet
    env: dict[str, str]
    schema: str
    dsn: str

    @property
    def gateway(self) -> str:
        return self.fleet["gateway"].url

    @property
    def lineage(self) -> str:
        return self.fleet["codex-lineage"].url

    def replay(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        """The replay command as an operator runs it (a process with the fleet's environment)."""
        return subprocess.run([sys.executable, "-m", "codex_lineage.replay", *args], env={**os.environ, **self.env},
                              cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)


@dataclass(frozen=True)
class Keys:
    tenant: str
    user: str
    other: str
    admin: str


async def _keys(dsn: str, tenant: str) -> Keys:
    store = await KeyStore.connect(dsn)
    try:
        user = (await store.create("lineage-user", "user", [tenant]))[1]
        other = (await store.create("lineage-other", "user", [f"{tenant}-other"]))[1]
        admin = (await store.create("lineage-admin", "admin", [f"{tenant}-admin"]))[1]
    finally:
        await store.close()
    return Keys(tenant, user, other, admin)


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def lineage_fleet(infra: dict[str, str], scripted_server: Scripted) -> Iterator[LineageFleet]:
    namespace = new_namespace("lin")
    schema = ("audit_" + namespace.replace("-", "_"))[:63]
    env = {
        "MOE_TOPIC_NAMESPACE": namespace,
        "MOE_AUDIT_SCHEMA": schema,
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_REQUEST_TIMEOUT_S": "45",
        "MOE_LOG_LEVEL": "INFO",
        **scripted_env(scripted_server.url),
        "MOE_ROUTER_ENABLED": "false",
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
        "MOE_SEMANTIC_CACHE_ENABLED": "false",  # every journey is planned (no Chroma needed)
        "MOE_PLANNER_GRAPH_TASKS": "false",  # no graph-rag in this fleet: the plans are the scripted ones
    }
    fleet = Fleet(env, gateway_workers=1, extra=("codex-lineage",))
    for name in list(fleet.services):
        if name not in SERVICES:
            del fleet.services[name]
    try:
        fleet.start()
        yield LineageFleet(fleet, {**env, "MOE_HTTP_PORT": str(fleet["codex-lineage"].port)}, schema,
                           infra["postgres"])
    finally:
        fleet.stop()
        asyncio.run(_drop_schema(infra["postgres"], schema))


@pytest.fixture(scope="session")
def keys(infra: dict[str, str]) -> Keys:
    return asyncio.run(_keys(infra["postgres"], new_namespace("tenant")))
