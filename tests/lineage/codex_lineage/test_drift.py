"""Data health on the live lineage fleet: graph-ingest's `ingested` events and an applied knowledge import on the
real broker, recorded by codex-lineage in the real audit store, come back from GET /v1/health/drift as ingest
runs with the seed's drift flags judged against the dataset's own baseline: a run that writes triples among
entities the graph already knows is healthy, a run that declared triples and wrote none is flagged (crit) and
counted in moe_data_health_runs; unknown datasets and runs are 404 and bad parameters 400 in the API's envelope."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from moe_core.knowledge.graph.audit import audit_event
from tests.lineage.conftest import Keys, LineageFleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


def _ingested(tenant: str, rid: str, declared: int, before: int, after: int, relations: tuple[int, int],
              written: int = 3) -> Any:
    stats = {"declared_entities": declared, "declared_relations": 3, "written_relations": written,
             "written_entities": declared if written else 0,
             "before": {"entities": before, "relations": relations[0]},
             "after": {"entities": after, "relations": relations[1]}}
    return audit_event(None, actor="graph-ingest", action="ingested", subject=rid, tenant=tenant, response_id=rid,
                       reason=f"{written} of 3 triples written",
                       details={"relations": [], "triples": [], "stats": stats})


def _import(tenant: str, cs: str) -> list[Any]:
    summary = {"entities_added": 4, "entities_unchanged": 0, "relations_added": 4, "relations_changed": 0,
               "relations_conflicting": 0, "relations_unchanged": 0}
    return [audit_event(None, actor="key:k1", action="knowledge_import_created", subject=cs, tenant=tenant,
                        response_id=cs, details={"summary": summary, "approvals_required": 0}),
            audit_event(None, actor="key:k1", action="knowledge_import_applied", subject=cs, tenant=tenant,
                        response_id=cs, details={"entities_created": 4, "relations_written": 4})]


def _wait_runs(fleet: LineageFleet, key: str, dataset: str, count: int) -> dict[str, Any]:
    end, body = time.monotonic() + 90, {}
    while time.monotonic() < end:
        response = fleet.get("/v1/health/drift", key, dataset=dataset)
        if response.status_code == 200:
            body = response.json()
            if len(body["data"]) >= count:
                return body
        time.sleep(0.5)
    raise AssertionError(f"{dataset}: {body}")


def _crit_runs(fleet: LineageFleet) -> float:
    text = httpx.get(f"{fleet.lineage}/metrics", timeout=10).text
    line = next((ln for ln in text.splitlines() if ln.startswith('moe_data_health_runs{severity="crit"} ')), None)
    return float(line.split()[-1]) if line else -1.0


def test_known_entities_are_healthy_and_a_run_that_wrote_nothing_is_flagged(lineage_fleet: LineageFleet,
                                                                           keys: Keys) -> None:
    tenant = new_namespace("drift")
    dataset = f"graph/{tenant}"
    grew, known, stalled = (f"r-{uuid.uuid4().hex[:10]}" for _ in range(3))
    cs = f"kcs-{uuid.uuid4().hex}"
    assert lineage_fleet.get("/v1/health/drift", keys.admin, dataset=dataset).status_code == 404
    lineage_fleet.publish_audit([_ingested(tenant, grew, 6, 100, 106, (50, 53)),
                                 _ingested(tenant, known, 6, 106, 106, (53, 56)),  # among known entities: healthy
                                 _ingested(tenant, stalled, 6, 106, 106, (56, 56), written=0),
                                 _ingested(tenant, stalled, 6, 106, 106, (56, 56), written=0),  # redelivered: once
                                 *_import(tenant, cs)], service="graph-ingest")
    body = _wait_runs(lineage_fleet, keys.admin, dataset, 4)
    runs = {r["id"]: r for r in body["data"]}
    assert set(runs) == {f"ingest:{grew}", f"ingest:{known}", f"ingest:{stalled}", f"import:{cs}"}
    for healthy in (f"ingest:{grew}", f"ingest:{known}"):
        assert (runs[healthy]["severity"], runs[healthy]["flags"]) == ("ok", []), runs[healthy]
    zero = runs[f"ingest:{stalled}"]
    assert zero["flags"] == ["nothing_written"] and zero["severity"] == "crit"
    assert zero["written_relations"] == 0 and zero["declared_relations"] == 3 and zero["before"]["entities"] == 106
    assert runs[f"import:{cs}"]["severity"] == "ok" and runs[f"import:{cs}"]["declared_from"] == "bundle"
    assert body["summary"]["by_severity"] == {"ok": 3, "info": 0, "warn": 0, "crit": 1}
    assert body["summary"]["by_flag"]["nothing_written"] == 1 and body["summary"]["by_flag"]["zero_entities_added"] == 0
    assert body["datasets"][dataset]["runs"] == 4 and body["datasets"][dataset]["entities_added"] == 10
    crit = lineage_fleet.get("/v1/health/drift", keys.admin, dataset=dataset, severity="crit").json()
    assert [r["id"] for r in crit["data"]] == [f"ingest:{stalled}"]
    one = lineage_fleet.get(f"/v1/health/drift/runs/ingest:{stalled}", keys.admin)
    assert one.status_code == 200 and one.json()["flags"] == ["nothing_written"]
    summary = lineage_fleet.get(f"/v1/health/drift/datasets/{dataset}", keys.admin).json()
    assert summary["severity"] == "crit" and summary["latest"]["id"] == f"import:{cs}"
    end = time.monotonic() + 60
    while _crit_runs(lineage_fleet) < 1 and time.monotonic() < end:  # the periodic evaluation (2 s here)
        time.sleep(0.5)
    assert _crit_runs(lineage_fleet) >= 1


def test_unknown_datasets_and_runs_are_404_and_bad_parameters_400(lineage_fleet: LineageFleet, keys: Keys) -> None:
    cases = [("/v1/health/drift", {"dataset": "graph/no-such-tenant-x1"}, 404, "not_found"),
             ("/v1/health/drift/datasets/graph/no-such-tenant-x1", {}, 404, "not_found"),
             ("/v1/health/drift/runs/ingest:r-does-not-exist", {}, 404, "not_found"),
             ("/v1/health/drift/runs/whatever", {}, 404, "not_found"),
             ("/v1/health/drift", {"dataset": "cache/x"}, 400, "invalid_value"),
             ("/v1/health/drift", {"hours": "soon"}, 400, "invalid_value"),
             ("/v1/health/drift", {"hours": "nan"}, 400, "invalid_value"),
             ("/v1/health/drift", {"limit": "0"}, 400, "invalid_value"),
             ("/v1/health/drift", {"severity": "fatal"}, 400, "invalid_value"),
             ("/v1/health/drift/datasets", {"hours": "-1"}, 400, "invalid_value")]
    for path, params, status, code in cases:
        response = lineage_fleet.get(path, keys.admin, **params)
        assert response.status_code == status, (path, params, response.text)
        assert response.json()["error"]["code"] == code
    assert lineage_fleet.get("/v1/health/drift", None).status_code == 401
    assert lineage_fleet.get("/v1/health/drift", keys.user).status_code == 403


def test_a_tenant_admin_sees_only_its_own_tenants_runs_and_the_operator_sees_all(
        lineage_fleet: LineageFleet, keys: Keys, infra: dict[str, str]) -> None:
    mine, theirs = new_namespace("drift-own"), new_namespace("drift-foreign")
    [admin] = new_keys(infra["postgres"], ("drift-own-admin", "admin", [mine]))
    own, foreign = f"r-{uuid.uuid4().hex[:10]}", f"r-{uuid.uuid4().hex[:10]}"
    lineage_fleet.publish_audit([_ingested(mine, own, 6, 10, 16, (5, 8)),
                                 _ingested(theirs, foreign, 6, 10, 10, (5, 8))], service="graph-ingest")
    _wait_runs(lineage_fleet, keys.admin, f"graph/{theirs}", 1)  # the operator reads any tenant
    _wait_runs(lineage_fleet, admin, f"graph/{mine}", 1)

    # another tenant's dataset and run are 404 with the words of an unknown one
    unknown = lineage_fleet.get("/v1/health/drift/datasets/graph/no-such-tenant-x1", admin).json()["error"]
    for path, params in ((f"/v1/health/drift/datasets/graph/{theirs}", {}),
                         ("/v1/health/drift", {"dataset": f"graph/{theirs}"})):
        refused = lineage_fleet.get(path, admin, **params)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"] == {**unknown, "message": f"no dataset graph/{theirs}"}
    refused = lineage_fleet.get(f"/v1/health/drift/runs/ingest:{foreign}", admin)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", refused.text
    assert lineage_fleet.get(f"/v1/health/drift/runs/ingest:{own}", admin).status_code == 200

    # the lists without a filter hold only the caller's tenants; the operator's hold both
    listed = lineage_fleet.get("/v1/health/drift", admin, limit="500").json()
    assert {r["tenant"] for r in listed["data"]} == {mine} and set(listed["datasets"]) == {f"graph/{mine}"}
    assert listed["summary"]["runs"] == 1, listed["summary"]
    datasets = lineage_fleet.get("/v1/health/drift/datasets", admin).json()["data"]
    assert [d["dataset"] for d in datasets] == [f"graph/{mine}"]
    fleet_wide = lineage_fleet.get("/v1/health/drift", keys.admin, limit="500").json()
    assert {f"ingest:{own}", f"ingest:{foreign}"} <= {r["id"] for r in fleet_wide["data"]}
    every = {d["dataset"] for d in lineage_fleet.get("/v1/health/drift/datasets", keys.admin).json()["data"]}
    assert {f"graph/{mine}", f"graph/{theirs}"} <= every
    assert lineage_fleet.get(f"/v1/health/drift/runs/ingest:{foreign}", keys.admin).status_code == 200
