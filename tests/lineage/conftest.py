"""A lean fleet for the audit and lineage journeys: gateway, planner, expert-worker, merger and codex-lineage
(own topic namespace, own audit schema in Postgres, scripted models), plus keys of two tenants and an admin; and what
the `replay rerun` journeys share (a request asked and read back from the record, the models changed since)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.chain_store import audit_schema_fixture  # noqa: F401 (an audit schema of a test's own)
from tests.support.audited_fleet import AuditedFleet, audited_fleet
from tests.support.fleet import REPO, Fleet, producer_env
from tests.support.keys import new_key, new_keys
from tests.support.namespaces import new_namespace


@dataclass
class LineageFleet:
    fleet: Fleet
    env: dict[str, str]
    schema: str
    dsn: str  # the control plane's own role: it serves the audit API and may only read the audit store
    owner_dsn: str  # the audit store's owner: the database owner's rights
    rules: Path  # codex-lineage's compliance rule files (a copy of policy/compliance the tests may break)
    classes: Path  # its data-class file (a copy of policy/data-classes.yaml the tests may change)

    @classmethod
    def of(cls, running: AuditedFleet, infra: dict[str, str], rules: Path, classes: Path) -> LineageFleet:
        """An audited fleet with the environment the operator's replay command runs in (as with_fleet_env):
        codex-lineage's port, its writer role and the audit store's migrator."""
        env = {**running.env, "MOE_HTTP_PORT": str(running.fleet["codex-lineage"].port),
               "MOE_AUDIT_WRITER_DSN": infra["postgres-codex-lineage"], "MOE_AUDIT_MIGRATOR_DSN": running.owner_dsn,
               # what it publishes (a rerun's request, a closed period's checkpoint) it signs as codex-lineage
               **producer_env(running.fleet.producer_keys, "codex-lineage")}
        return cls(running.fleet, env, running.schema, infra["postgres-control-plane"], running.owner_dsn, rules,
                   classes)

    @property
    def gateway(self) -> str:
        return self.fleet["gateway"].url

    @property
    def control_plane(self) -> str:
        return self.fleet["control-plane"].url

    @property
    def lineage(self) -> str:
        return self.fleet["codex-lineage"].url

    def get(self, path: str, key: str | None, **params: str) -> httpx.Response:
        """GET codex-lineage's API with `key` as the bearer (None: no Authorization header)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.lineage}{path}", params=params, headers=headers, timeout=120)

    def publish_audit(self, events: list[Any], service: str = "gateway") -> None:
        """Audit events on the fleet's audit topic, published as `service` (on the real broker)."""
        self.publish([(event, "audit") for event in events], service)

    def publish(self, messages: list[tuple[Any, str]], service: str, spacing_s: float = 0.0) -> None:
        """Messages on the fleet's topics (by Topics attribute, e.g. "results"), published as `service` (on the
        real broker), as that stage would (signed with its producer key); `spacing_s` apart (a trickle, as a lightly
        loaded fleet sends them)."""
        from moe_core.runtime.bus import Bus
        from moe_core.runtime.settings import FleetSettings
        from moe_core.stage.producers import key_file

        async def send() -> None:
            bus = Bus(FleetSettings(kafka_bootstrap=self.env["MOE_KAFKA_BOOTSTRAP"], service_name=service,
                                    topic_namespace=self.env["MOE_TOPIC_NAMESPACE"],
                                    producer_signing_key=str(key_file(self.fleet.producer_keys, service))))
            await bus.broker.start()
            try:
                for message, topic in messages:
                    await bus.publish(message, getattr(bus.topics, topic))
                    await asyncio.sleep(spacing_s)
            finally:
                await bus.close()

        asyncio.run(send())

    def wait_settled(self, tenant: str, ingests: int = 1) -> None:
        """Until the tenant's chain stops growing (its requests' last messages, their `ingests` ingest events, are
        recorded) and a checkpoint covers its head."""
        asyncio.run(self._settled(tenant, ingests))

    async def _settled(self, tenant: str, ingests: int) -> None:
        conn = await asyncpg.connect(self.dsn)
        schema = f'"{self.schema}"'
        try:
            deadline, last, steady = time.monotonic() + 90, -1, 0
            while time.monotonic() < deadline:
                head = await conn.fetchval(f"SELECT max(seq) FROM {schema}.audit_log WHERE tenant_id=$1", tenant) or 0
                covered = await conn.fetchval(f"SELECT max(size) FROM {schema}.audit_checkpoints WHERE tenant_id=$1",
                                              tenant) or 0
                ingested = await conn.fetchval(f"SELECT count(*) FROM {schema}.audit_log WHERE tenant_id=$1 AND "
                                               "message_type='IngestEvent'", tenant)
                steady = steady + 1 if head == last and covered == head and ingested >= ingests else 0
                if steady >= 6:
                    return
                last = head
                await asyncio.sleep(0.5)
            raise AssertionError(f"the chain of {tenant} did not settle (head {last})")
        finally:
            await conn.close()

    def replay(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        """The replay command as an operator runs it (a process with the fleet's environment)."""
        return subprocess.run([sys.executable, "-m", "codex_lineage.replay", *args], env={**os.environ, **self.env},
                              cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)

    def rerun(self, how: str, rid: str) -> subprocess.CompletedProcess[str]:
        """`replay rerun --as-recorded|--today <rid>`, the re-execution given 90 s."""
        return self.replay("rerun", how, rid, "--timeout", "90", timeout_s=180)

    def ask(self, key: str, question: str) -> tuple[str, str]:
        """One question through the gateway with the OpenAI SDK as `key`: (the response id, the answer)."""
        client = openai.OpenAI(base_url=f"{self.gateway}/v1", api_key=key, max_retries=0, timeout=90)
        response = client.chat.completions.create(model="moe-orchestrator",
                                                  messages=[{"role": "user", "content": question}])
        return response.id.removeprefix("chatcmpl-"), response.choices[0].message.content or ""

    def records(self, rid: str, until: str | None = None, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The request's records in chain order, each its payload with its message type under "type" (read as
        the audit store's owner). until: a message type to wait for (codex-lineage writes the record from the
        topics after the client already has its answer)."""
        async def fetch() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.owner_dsn)
            try:
                end = asyncio.get_running_loop().time() + timeout_s
                while True:
                    rows = await conn.fetch(f'SELECT message_type, payload FROM "{self.schema}".audit_log '
                                            "WHERE response_id=$1 AND kind='record' ORDER BY seq", rid)
                    if until is None or any(r["message_type"] == until for r in rows):
                        break
                    assert asyncio.get_running_loop().time() < end, f"no {until} recorded for {rid}"
                    await asyncio.sleep(0.2)
            finally:
                await conn.close()
            return [{"type": r["message_type"], **json.loads(r["payload"])} for r in rows]

        return asyncio.run(fetch())


def reexecution(lines: list[str]) -> tuple[str, str]:
    """A rerun's head line (`re-executed as replay-…: …`) and the re-execution's response id."""
    head = next(ln for ln in lines if ln.startswith("re-executed as replay-"))
    return head, head.split()[2].rstrip(":")


def tenant_user(infra: dict[str, str], name: str) -> tuple[str, str]:
    """A tenant of its own and a user key of it: (tenant, key)."""
    tenant = new_namespace("tenant")
    return tenant, new_key(infra["postgres"], name, "user", [tenant])


@dataclass(frozen=True)
class Keys:
    tenant: str
    user: str
    other: str
    admin: str  # the fleet operator: reads across tenants where the policy allows (each read audited)
    tenant_admin: str  # a tenant admin of another tenant: sees only its own


@pytest.fixture(scope="package")
def tsa(infra: dict[str, str]) -> dict[str, str]:
    """The local RFC 3161 timestamp authority (Sigstore's timestamp-server, a fleetlib component): its URL
    and the PEM file of its certificate chain."""
    from fleetlib import api  # deploy/local (tests/conftest puts it on the path)

    api.ensure_up(["tsa"])
    return {"url": infra["tsa"], "chain": infra["tsa-chain"]}


@pytest.fixture(scope="package")
def lineage_fleet(infra: dict[str, str], scripted_server: Scripted) -> Iterator[LineageFleet]:
    rules = Path(tempfile.mkdtemp(prefix="compliance-rules-")) / "compliance"
    shutil.copytree(REPO / "policy" / "compliance", rules)
    classes = rules.parent / "data-classes.yaml"
    shutil.copy(REPO / "policy" / "data-classes.yaml", classes)
    from fleetlib import api  # deploy/local (tests/conftest puts it on the path)

    # Chroma's URL: the document catalog's uploads (the module starts Chroma); nothing here reads it at start
    with audited_fleet(infra, scripted_server.url, "lin", MOE_COMPLIANCE_RULES_DIR=str(rules),
                       MOE_DATA_CLASSES_FILE=str(classes), MOE_COMPLIANCE_INTERVAL_S="2",
                       MOE_CHROMA_URL=api.endpoints()["chroma"]) as running:
        yield LineageFleet.of(running, infra, rules, classes)
    shutil.rmtree(rules.parent, ignore_errors=True)


@pytest.fixture(scope="package")
def graph_lineage_fleet(infra: dict[str, str], scripted_server: Scripted) -> Iterator[LineageFleet]:
    """The audited fleet plus graph-rag and graph-ingest on the shared Neo4j and Chroma; every plan gets the graph
    task. One fleet for the modules that need the graph (fact lineage, replay of a graph task): a start of its own
    each cost ~20-30 s of setup on two cores. They run last in the tier (tiers.LAST_IN_SCOPE), one after the other,
    so it is not left idle beside the lean fleet for the rest of the tier."""
    from fleetlib import api  # deploy/local (tests/conftest puts it on the path)

    api.ensure_up(["neo4j", "chroma"])  # the graph's reads and writes (Fleet gives every service its URL and login)
    with audited_fleet(infra, scripted_server.url, "lgr", services=("graph-rag", "graph-ingest"),
                       MOE_PLANNER_GRAPH_TASKS="true", MOE_GRAPH_DOCUMENTS="false", MOE_GRAPH_CACHE_TTL_S="0",
                       MOE_CHROMA_URL=api.endpoints()["chroma"]) as running:  # the tenants' documents
        yield LineageFleet.of(running, infra, REPO / "policy" / "compliance", REPO / "policy" / "data-classes.yaml")


@pytest.fixture(scope="package")
def keys(infra: dict[str, str]) -> Keys:
    tenant = new_namespace("tenant")
    user, other, admin, tenant_admin = new_keys(
        infra["postgres"], ("lineage-user", "user", [tenant]), ("lineage-other", "user", [f"{tenant}-other"]),
        ("lineage-admin", "operator", [f"{tenant}-admin"]), ("lineage-tenant-admin", "admin", [f"{tenant}-other"]))
    return Keys(tenant, user, other, admin, tenant_admin)


@pytest.fixture
def changed_models(scripted_server: Scripted, recorded: dict[str, Any]) -> Iterator[str]:
    """The models have since changed: every one answers the module's `recorded` request (its marker "m")
    otherwise. Yields the marker."""
    m = recorded["m"]
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Something else {m}"))},
        # confident: a low-confidence answer sends the merger to its research fallback, and this fleet has no research
        {"model": "expert-model", "contains": m, "reply": "Nobody knows.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": m, "reply": "It is a mystery today."},
    ], default_reply="a changed model")
    yield m
