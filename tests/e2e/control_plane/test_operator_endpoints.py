"""The operators' endpoints end to end: the real fleet (openai SDK as the client, scripted inference servers,
real Kafka, Redis, Postgres, Neo4j), a real Prometheus scraping it, and a gateway replica that reads its
latency percentiles from that Prometheus. Providers: health, latency percentiles, loaded models and breaker
state of every inference server; planner patterns from the plan cache and the feedback; ontology gaps and
graph runs; every one answers admin keys only (users: 403, no key: 401, in the API's envelope)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from moe_core.llm.switches import Switches
from tests.conftest import Scripted
from tests.e2e.conftest import _create_key
from tests.e2e.helpers import plan_reply
from tests.support.fleet import Fleet, ServiceProcess, free_port, running
from tests.support.prometheus_server import Prometheus, running_prometheus

pytestmark = pytest.mark.e2e
ENDPOINTS = ("/v1/admin/providers", "/v1/admin/ontology-gaps", "/v1/admin/planner-patterns", "/v1/admin/graph-runs")


@pytest.fixture(scope="module")
def prom(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    targets = {name: [f"127.0.0.1:{svc.port}"] for name, svc in fleet.services.items()}
    with running_prometheus(tmp_path_factory.mktemp("ops-prometheus"), targets, rules=[]) as handle:
        yield handle


@pytest.fixture(scope="module")
def ops_gateway(fleet: Fleet, prom: Prometheus) -> Iterator[str]:
    """One more control plane of the fleet (the operator endpoints are its), told where Prometheus is."""
    port = free_port()
    env = {**fleet["control-plane"].env, "MOE_HTTP_PORT": str(port),
           "MOE_PROMETHEUS_URL": prom.url, "MOE_OPS_LATENCY_WINDOW": "30m"}
    with running(ServiceProcess("control-plane", port, env)) as control_plane:
        yield control_plane.url


@pytest.fixture(scope="module")
def keys(infra: dict[str, str]) -> dict[str, str]:
    return {role: asyncio.run(_create_key(infra["postgres"], role, "tenant-e2e")) for role in ("admin", "user")}


@pytest.fixture(scope="module")
def store(infra: dict[str, str]) -> Iterator[Redis]:
    client = Redis.from_url(infra["redis"], decode_responses=True)
    yield client
    client.close()


def _get(url: str, key: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(url, headers=headers, params=params, timeout=60)


def _ask(base_url: str, key: str, question: str) -> Any:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=60)
    return client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": question}])


@pytest.mark.parametrize("path", ENDPOINTS)
def test_operator_endpoints_refuse_users_and_anonymous_callers(path: str, ops_gateway: str,
                                                              keys: dict[str, str]) -> None:
    refused = _get(f"{ops_gateway}{path}", keys["user"])
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert refused.json()["error"]["code"] == "insufficient_role"
    anonymous = _get(f"{ops_gateway}{path}", None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    answered = _get(f"{ops_gateway}{path}", keys["admin"])
    assert answered.status_code == 200, answered.text
    assert answered.json()["object"] == "list"


def test_providers_show_health_latency_loaded_models_and_breaker(
        ops_gateway: str, fleet: Fleet, keys: dict[str, str], prom: Prometheus, scripted: Scripted,
        scripted_server_b: Scripted, store: Redis) -> None:
    m = f"P{uuid.uuid4().hex[:8]}"
    scripted.script([{"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer {m}"))},
                     {"model": "expert-model", "contains": m, "reply": f"Fine {m}.\nCONFIDENCE: high"}])
    gateway = fleet["gateway"].url
    _ask(gateway, keys["user"], f"First question {m}")  # Prometheus sees the series, then its increase
    before = prom.wait_at_least('sum(moe_inference_seconds_count{server="scripted"})', 1)
    _ask(gateway, keys["user"], f"Second question {m}")
    prom.wait_at_least('sum(moe_inference_seconds_count{server="scripted"})', before + 1)

    # the percentiles are a rate over Prometheus' samples: present once a scrape after an increase of a series it
    # had sampled before is stored. A question answered by another process of a stage starts that process's series
    # (no rate yet), so while there is none another question is asked.
    deadline, asked = time.monotonic() + 90, 2
    while True:
        body = _get(f"{ops_gateway}/v1/admin/providers", keys["admin"]).json()
        servers = {s["name"]: s for s in body["data"]}
        if servers.get("scripted", {}).get("latency_s") is not None or time.monotonic() > deadline:
            break
        time.sleep(1)
        if asked < 6:
            asked += 1
            _ask(gateway, keys["user"], f"Question {asked} {m}")
    assert set(servers) == {"scripted", "scripted-b"}  # every configured server
    assert body["latency_source"].startswith("prometheus")
    a = servers["scripted"]
    assert a["healthy"] and a["probe"]["healthy"] and a["breaker"] == {"state": "closed"}
    assert {"planner-model", "expert-model", "judge-model"} <= set(a["loaded_models"])
    latency = a["latency_s"]
    assert latency is not None and 0 < latency["p50"] <= latency["p95"] <= latency["p99"]

    namespace = fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    scripted_server_b.state.down()
    try:
        _switch(fleet, enabled=False)
        b = {s["name"]: s for s in _get(f"{ops_gateway}/v1/admin/providers", keys["admin"]).json()["data"]}
        assert b["scripted-b"]["breaker"]["state"] == "disabled"
        assert not b["scripted-b"]["healthy"] and not b["scripted-b"]["probe"]["healthy"]  # it answers 503 now
        _switch(fleet, enabled=True)
        store.set(f"inference:{namespace}:down:scripted-b", "HTTP 503 from scripted-b", px=120_000)  # a failed call
        b = {s["name"]: s for s in _get(f"{ops_gateway}/v1/admin/providers", keys["admin"]).json()["data"]}
        assert b["scripted-b"]["breaker"]["state"] == "open"
        assert b["scripted-b"]["breaker"]["reason"] == "HTTP 503 from scripted-b"
        assert 0 < b["scripted-b"]["breaker"]["retry_in_s"] <= 120
    finally:
        store.delete(f"inference:{namespace}:down:scripted-b")
        _switch(fleet, enabled=True)
        scripted_server_b.state.up()


def _switch(fleet: Fleet, *, enabled: bool) -> None:
    """The operator's switch of scripted-b (what the console's fleet page sets)."""
    async def switch() -> None:
        redis = AsyncRedis.from_url(fleet["gateway"].env["MOE_REDIS_URL"], decode_responses=True)
        try:
            await Switches(redis, fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]).set("server", "scripted-b",
                                                                                 enabled=enabled)
        finally:
            await redis.aclose()

    asyncio.run(switch())


def _learned(url: str, key: str) -> dict[tuple[str, ...], int]:
    """The planner's learned combinations (GET /v1/admin/planner-patterns' `learned`) -> successes."""
    body = _get(f"{url}/v1/admin/planner-patterns", key, limit=100).json()
    return {tuple(p["pattern"]): p["successes"] for p in body["learned"]}


def _patterns(url: str, key: str) -> dict[tuple[str, ...], dict[str, Any]]:
    body = _get(f"{url}/v1/admin/planner-patterns", key, category="data_analyst", limit=100).json()
    return {tuple(p["pattern"]): p for c in body["data"] for p in c["patterns"]}


def test_planner_patterns_count_the_cached_plans_and_their_ratings(
        ops_gateway: str, fleet: Fleet, keys: dict[str, str], scripted: Scripted) -> None:
    m = f"Q{uuid.uuid4().hex[:8]}"
    shape = ("expert:data_analyst", "expert:general")
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("data_analyst", f"Compute {m}"), ("general", f"Explain {m}"))},
        {"contains": m, "reply": f"Done {m}.\nCONFIDENCE: high"}])
    before = _patterns(ops_gateway, keys["admin"]).get(shape, {"plans": 0, "ratings": 0})
    learned_before = _learned(ops_gateway, keys["admin"]).get(("data_analyst", "general"), 0)
    answer = _ask(fleet["gateway"].url, keys["user"], f"Compare 3 with 5, and why? {m}")
    rated = httpx.post(f"{fleet['control-plane'].url}/v1/feedback", headers={"Authorization": f"Bearer {keys['user']}"},
                       json={"response_id": answer.id, "rating": 4}, timeout=30)
    assert rated.status_code == 202, rated.text
    after = _patterns(ops_gateway, keys["admin"])[shape]
    assert after["plans"] == before["plans"] + 1
    assert after["ratings"] == before["ratings"] + 1 and after["mean_rating"] is not None
    assert after["planner_models"] == ["planner-model"]
    # the rating of 4 taught the planner the answer's expert combination (through moe.feedback.v1, so: eventually)
    deadline = time.monotonic() + 30
    while _learned(ops_gateway, keys["admin"]).get(("data_analyst", "general"), 0) == learned_before:
        assert time.monotonic() < deadline, "the planner did not learn the well-rated combination"
        time.sleep(0.5)
    assert _learned(ops_gateway, keys["admin"])[("data_analyst", "general")] == learned_before + 1
    # learned per tenant: the tenant admin sees its own tenant's, another tenant's is a 404
    own = _get(f"{ops_gateway}/v1/admin/planner-patterns", keys["admin"], tenant="tenant-e2e", limit=100).json()
    assert {tuple(p["pattern"]): p["tenants"] for p in own["learned"]}[("data_analyst", "general")] == ["tenant-e2e"]
    foreign = _get(f"{ops_gateway}/v1/admin/planner-patterns", keys["admin"], tenant="tenant-elsewhere")
    assert foreign.status_code == 404 and foreign.json()["error"]["param"] == "tenant"
    bad = _get(f"{ops_gateway}/v1/admin/planner-patterns", keys["admin"], limit=0)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_ontology_gaps_and_graph_runs_answer_admins(ops_gateway: str, keys: dict[str, str]) -> None:
    gaps = _get(f"{ops_gateway}/v1/admin/ontology-gaps", keys["admin"])
    assert gaps.status_code == 200 and set(gaps.json()["counts"]) == {"open", "healed", "rejected",
                                                                                   "quarantined"}
    bad = _get(f"{ops_gateway}/v1/admin/ontology-gaps", keys["admin"], state="forgotten")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "state"
    runs = _get(f"{ops_gateway}/v1/admin/graph-runs", keys["admin"], outcome="ok")
    assert runs.status_code == 200 and all(r["outcome"] == "ok" for r in runs.json()["data"])
