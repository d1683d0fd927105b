"""The graph tier: real Neo4j (ontology seeded once per session), real Kafka, and the graph services
(graph-ingest, graph-rag, gap-healer) plus the gateway and the control plane running in this process under one
namespace.
Tests isolate themselves by a unique tenant id, removed afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from control_plane.app import create_app as control_plane_app
from control_plane.settings import ControlPlaneSettings
from gap_healer.app import create_app as gap_healer_app
from gap_healer.settings import GapHealerSettings
from gateway.app import create_app as gateway_app
from gateway.settings import GatewaySettings
from graph_ingest.app import create_app as graph_ingest_app
from graph_ingest.settings import GraphIngestSettings
from graph_rag.app import create_app as graph_rag_app
from graph_rag.settings import GraphRagSettings
from moe_core.access.keystore import KeyStore
from moe_core.contracts import Envelope
from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.lifecycle import prepare_graph
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from tests.conftest import SCRIPTED_MODELS, Scripted
from tests.graph.helpers import TopicTap, purge, run_in_process
from tests.support.keys import person_key
from tests.support.namespaces import new_namespace
from tests.support.split_routes import SplitASGITransport
from tests.support.store_auth import neo4j_auth


@pytest.fixture(scope="package")
def neo4j_url(infra: dict[str, str]) -> str:
    from fleetlib import api

    api.ensure_up(["neo4j"])
    return infra["neo4j"]


@pytest.fixture(scope="package")
async def graph_db(neo4j_url: str) -> AsyncIterator[GraphDB]:
    db = GraphDB(neo4j_url, *neo4j_auth())
    await prepare_graph(db)  # constraints, indexes and the base ontology, once (idempotent)
    yield db
    await db.close()


@pytest.fixture
async def tenant(graph_db: GraphDB) -> AsyncIterator[str]:
    name = f"gt-{uuid.uuid4().hex[:10]}"
    yield name
    await purge(graph_db, name)


@dataclass
class GraphServices:
    namespace: str
    bus: Bus
    tap: TopicTap
    gateway: httpx.AsyncClient
    admin_key: str
    user_key: str
    tenant_keys: dict[str, str]
    apps: dict[str, FastAPI]
    keystore: KeyStore

    async def publish(self, message: Envelope, topic: str) -> None:
        await self.bus.publish(message, getattr(self.bus.topics, topic))

    async def admin_key_for(self, tenant: str) -> str:
        """The tenant's admin: a person (four-eyes approvals are people's)."""
        if tenant not in self.tenant_keys:
            self.tenant_keys[tenant] = (await person_key(self.keystore, "graph admin", "admin", [tenant]))[1]
        return self.tenant_keys[tenant]

    async def second_approver_for(self, tenant: str) -> str:
        """An admin key of the tenant held by another person than admin_key_for's (four-eyes)."""
        return (await person_key(self.keystore, "graph admin b", "admin", [tenant]))[1]

    async def approve(self, item_id: str, tenant: str) -> httpx.Response:
        """Approve a quarantined item as far as it goes: by the tenant's admin, and when the policy asks for a
        second principal (a protected domain), by another one; the last answer."""
        answer = await self.gateway.post(f"/graph/quarantine/{item_id}/approve",
                                         headers={"Authorization": f"Bearer {await self.admin_key_for(tenant)}"})
        if answer.status_code == 200 and answer.json()["status"] == "pending":
            answer = await self.gateway.post(f"/graph/quarantine/{item_id}/approve", headers={
                "Authorization": f"Bearer {await self.second_approver_for(tenant)}"})
        return answer

    async def user_key_for(self, tenant: str) -> str:
        return (await self.keystore.create("graph-user", "user", [tenant]))[1]


def _common(infra: dict[str, str], namespace: str, neo4j: str, scripted_url: str) -> dict[str, Any]:
    servers = [{"name": "scripted", "url": scripted_url, "models": SCRIPTED_MODELS, "max_retries": 0,
                "timeout_s": 30}]
    return {"topic_namespace": namespace, "kafka_bootstrap": infra["kafka"], "redis_url": infra["redis"],
            "postgres_dsn": infra["postgres"], "neo4j_url": neo4j, "consumer_workers": 1, "opa_url": infra["opa"],
            **dict(zip(("neo4j_user", "neo4j_password"), neo4j_auth(), strict=True)),
            "inference_servers": json.dumps(servers),
            "model_assignments": json.dumps({"default": ["expert-model"], "planner": ["planner-model"],
                                             "judge": ["judge-model"]})}


@pytest.fixture(scope="package")
async def graph_services(infra: dict[str, str], neo4j_url: str, graph_db: GraphDB,
                         scripted_server: Scripted) -> AsyncIterator[GraphServices]:
    namespace = new_namespace("g")
    common = _common(infra, namespace, neo4j_url, scripted_server.url)
    apps = {
        "graph-ingest": graph_ingest_app(GraphIngestSettings(**common, graph_trust_recompute_s=0)),
        "graph-rag": graph_rag_app(GraphRagSettings(**common)),
        "gap-healer": gap_healer_app(GapHealerSettings(**common)),
        "gateway": gateway_app(GatewaySettings(**common)),
        "control-plane": control_plane_app(ControlPlaneSettings(**common)),
    }
    bus = Bus(FleetSettings(**common, service_name="graph-tests"))
    tap = TopicTap(infra["kafka"], *[getattr(bus.topics, t) for t in
                                     ("audit", "results", "ontology_gaps", "ingest", "deadletter")])
    keystore = await KeyStore.connect(infra["postgres"], cache_ttl_s=0)
    async with AsyncExitStack() as stack:
        await run_in_process(stack, apps.values(), bus, tap)
        stack.push_async_callback(keystore.close)
        # one client for both: the protocol routes reach the gateway, the others the control plane
        both = SplitASGITransport(httpx.ASGITransport(app=apps["gateway"]),
                                  httpx.ASGITransport(app=apps["control-plane"]))
        client = httpx.AsyncClient(transport=both, base_url="http://gateway")
        stack.push_async_callback(client.aclose)
        admin = (await keystore.create("graph-admin", "admin", ["gt-admin-unused"]))[1]
        user = (await keystore.create("graph-user", "user", ["gt-user-unused"]))[1]
        yield GraphServices(namespace, bus, tap, client, admin, user, {}, apps, keystore)
