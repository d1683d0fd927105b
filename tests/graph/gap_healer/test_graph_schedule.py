"""The graph's maintenance on a schedule, on real Neo4j, Postgres, Redis, Kafka and Prometheus: the gap-healer
(a real process) runs a scheduled lint at start, the run is in the history (Postgres) and readable over the
gateway's API (admins only), and its metrics reach a real Prometheus scraping the process; a run that is not
due or whose lock another replica holds does not start; a heal run retries the gaps whose classification
failed, and the operators' endpoint shows each gap's state."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from gap_healer.app import build, close
from gap_healer.schedule import Scheduler
from gap_healer.settings import GapHealerSettings
from moe_core.contracts import OntologyGap, deadline_in
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.run_history import RunHistory
from moe_core.knowledge.graph.trust import DAY_S
from moe_core.runtime.bus import Bus
from tests.conftest import Scripted
from tests.deploy.deploy_support import DASHBOARDS, grafana_to_promql
from tests.graph.conftest import GraphServices, _common
from tests.graph.gap_healer.test_gaps_and_lint import BACKDATE, classify_rule
from tests.support.fleet import ServiceProcess, free_port
from tests.support.prometheus_server import running_prometheus
from tests.support.store_auth import neo4j_env

pytestmark = pytest.mark.infra
WAIT_S = 90  # a loaded 2-core machine


@pytest.fixture
def prom_for(tmp_path: Path) -> Iterator[Any]:
    """Start a real Prometheus (Debian's) scraping the given targets every second."""
    with ExitStack() as stack:
        yield lambda targets: stack.enter_context(running_prometheus(tmp_path, targets, rules=[]))


def _env(infra: dict[str, str], neo4j_url: str, namespace: str, scripted_url: str, port: int,
         **extra: str) -> dict[str, str]:
    common = _common(infra, namespace, neo4j_url, scripted_url)
    env = {f"MOE_{k.upper()}": str(v) for k, v in common.items()}
    return {**os.environ, **env, **neo4j_env(), "MOE_HTTP_PORT": str(port), **extra}


def _maintenance_panels() -> list[tuple[str, str]]:
    dash = json.loads((DASHBOARDS / "knowledge-graph.json").read_text())
    found = [(p["title"], t["expr"]) for p in dash["panels"] if p["type"] != "row" for t in p["targets"]
             if "moe_graph_" in t["expr"]]
    assert len(found) >= 6
    return found


async def _wait_run(history: RunHistory, kind: str) -> dict[str, Any]:
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        runs = [r for r in await history.recent(kind) if r["finished_at"]]
        if runs:
            return runs[0]
        await asyncio.sleep(0.3)
    raise AssertionError(f"no finished {kind} run in the history")


async def test_a_scheduled_lint_run_is_in_the_history_and_its_metrics_in_prometheus(
        graph_services: GraphServices, infra: dict[str, str], neo4j_url: str, graph_db: GraphDB, tenant: str,
        scripted_server: Scripted, prom_for: Any) -> None:
    store = GraphStore(graph_db)
    old = await store.write_triple(Triple(subject="Zorbicin", relation="TREATS", object="Flimflam Fever",
                                          confidence=0.8), Provenance(tenant=tenant, source="extracted", origin="a1"))
    await graph_db.write(BACKDATE, id=old.id, seconds=400 * DAY_S)  # trust 0.144 < 0.2: the decay rule applies
    port = free_port()
    healer = ServiceProcess("gap-healer", port, _env(
        infra, neo4j_url, graph_services.namespace, scripted_server.url, port,
        MOE_GRAPH_SCHEDULE_RUN_AT_START="true", MOE_GRAPH_SCHEDULE_TENANT=tenant, MOE_GRAPH_SCHEDULE_TICK_S="1",
        MOE_GRAPH_HEAL_INTERVAL_S="0"))
    history = await RunHistory.connect(infra["postgres"], graph_services.namespace)
    try:
        healer.start()
        healer.wait_ready()
        run = await _wait_run(history, "lint")
        assert (run["outcome"], run["trigger"], run["error"]) == ("ok", "schedule", None)
        counts = run["counts"]
        assert (counts["tenant"], counts["decay"], counts["orphans"], counts["contradictions"]) == (tenant, 1, 2, 0)
        assert counts["relations_deleted"] >= 1  # its own deletions (the whole graph's counts move with other writers)
        assert not await graph_db.read("MATCH ()-[r:REL {id: $id}]->() RETURN r.id AS id", id=old.id)

        prom = prom_for({"gap-healer": [f"127.0.0.1:{port}"]})
        assert prom.wait_at_least('moe_graph_lint_findings_total{check="decay"}', 1) >= 1
        assert prom.wait_at_least('moe_graph_lint_findings_total{check="orphans"}', 2) >= 2
        assert prom.wait_at_least("moe_graph_decay_deletions_total", 1) >= 1
        assert prom.wait_at_least('moe_graph_runs_total{kind="lint",trigger="schedule",outcome="ok"}', 1) == 1
        assert prom.wait_at_least('moe_graph_size{kind="entities"}', 1) >= 1
        assert prom.value('moe_graph_quarantine_items{status="pending"}') is not None
        assert prom.value('moe_graph_ontology_gaps{state="open"}') is not None
        for title, expr in _maintenance_panels():  # the dashboard's panels get data from this process
            assert prom.wait_some(grafana_to_promql(expr, "30m")) is not None, title  # a rate: two scrapes

        admin = {"Authorization": f"Bearer {graph_services.admin_key}"}
        listed = await graph_services.gateway.get("/v1/admin/graph-runs", params={"kind": "lint"}, headers=admin)
        assert listed.status_code == 200, listed.text
        [seen] = [r for r in listed.json()["data"] if r["id"] == run["id"]]
        assert seen["counts"]["decay"] == 1 and seen["started_at"] <= seen["finished_at"]
        assert len([r for r in listed.json()["data"] if r["kind"] == "lint"]) == 1  # one runner, once
        user = {"Authorization": f"Bearer {graph_services.user_key}"}
        refused = await graph_services.gateway.get("/v1/admin/graph-runs", headers=user)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_role"
        bad = await graph_services.gateway.get("/v1/admin/graph-runs", params={"kind": "nope"}, headers=admin)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "kind"
    finally:
        healer.stop()
        await history.close()


async def test_a_run_that_is_not_due_or_locked_does_not_start(
        infra: dict[str, str], neo4j_url: str, scripted_server: Scripted, tenant: str, redis: Any) -> None:
    from tests.support.namespaces import new_namespace

    settings = GapHealerSettings(**_common(infra, new_namespace("gs"), neo4j_url, scripted_server.url),
                                 graph_schedule_tenant=tenant, graph_lint_interval_s=3600)
    bus = Bus(settings)
    healer = build(settings, bus)
    scheduler = Scheduler(healer, settings, healer.memo.redis)
    await bus.ensure_topics()
    await bus.broker.start()  # a lint run's audit events
    try:
        assert (await scheduler.run("lint", "schedule", force=False)).outcome == "not_due"  # started just now
        first = await scheduler.run("lint", "manual")
        assert first.outcome == "ok" and first.counts["findings"] == 0
        assert (await scheduler.run("lint", "schedule", force=False)).outcome == "not_due"  # ran just now
        lock = f"graph-schedule:{settings.topic_namespace}:lint"
        await redis.set(lock, "another-replica", px=60_000)
        assert (await scheduler.run("lint", "manual")).outcome == "locked"
        assert await redis.get(lock) in ("another-replica", b"another-replica")  # not released by this one
        await redis.delete(lock)
        runs = await scheduler.history.recent("lint")  # type: ignore[union-attr]
        assert [(r["trigger"], r["outcome"]) for r in runs] == [("manual", "ok")]
    finally:
        await bus.close()
        await close(healer)


async def test_a_heal_run_retries_the_gaps_whose_classification_failed(
        graph_services: GraphServices, infra: dict[str, str], neo4j_url: str, scripted: Scripted,
        tenant: str) -> None:
    term = f"quombat{uuid.uuid4().hex[:6]}"
    namespace = graph_services.namespace
    gone = json.dumps([{"name": "gone", "url": f"http://127.0.0.1:{free_port()}", "max_retries": 0, "timeout_s": 5}])
    common = {**_common(infra, namespace, neo4j_url, scripted.url), "graph_schedule_tenant": tenant,
              "graph_heal_retry_after_s": 0}
    down = GapHealerSettings(**{**common, "inference_servers": gone})
    healer = build(down, Bus(down))
    try:  # the model server is unreachable: the gap stays open
        outcome = await healer.heal(OntologyGap(response_id=f"r-{term}", tenant_id=tenant,
                                                deadline_at=deadline_in(60), term=term, context=f"what is {term}?"))
        assert outcome == "failed"
    finally:
        await close(healer)
    admin = {"Authorization": f"Bearer {await graph_services.admin_key_for(tenant)}"}
    stranger = {"Authorization": f"Bearer {graph_services.admin_key}"}  # an admin of another tenant: not found
    hidden = await graph_services.gateway.get("/v1/admin/ontology-gaps", params={"tenant": tenant}, headers=stranger)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert term not in {g["term"] for g in (await graph_services.gateway.get(
        "/v1/admin/ontology-gaps", headers=stranger)).json()["data"]}  # nor in its own list
    gaps = await graph_services.gateway.get("/v1/admin/ontology-gaps", params={"tenant": tenant}, headers=admin)
    [gap] = gaps.json()["data"]
    assert (gap["term"], gap["state"], gap["attempts"], gap["seen"]) == (term, "open", 1, 1) and gap["last_error"]

    scripted.script([classify_rule(term, term.capitalize(), "Framework", "technical")])  # not held for review
    up = GapHealerSettings(**common)
    bus = Bus(up)
    healer = build(up, bus)
    scheduler = Scheduler(healer, up, healer.memo.redis)
    try:
        await bus.broker.start()  # a healed gap is an audit event
        run = await scheduler.run("heal", "manual")
        assert run.outcome == "ok", run.error
        assert (run.counts["retried"], run.counts["healed"], run.counts["failed"]) == (1, 1, 0)
        assert run.counts["open_after"] == 0  # of this tenant
    finally:
        await bus.close()
        await close(healer)
    gaps = await graph_services.gateway.get("/v1/admin/ontology-gaps", params={"tenant": tenant, "state": "healed"},
                                            headers=admin)
    [gap] = gaps.json()["data"]
    assert (gap["term"], gap["state"], gap["parent"]) == (term, "healed", "Framework")
    user = {"Authorization": f"Bearer {graph_services.user_key}"}
    refused = await graph_services.gateway.get("/v1/admin/ontology-gaps", headers=user)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
