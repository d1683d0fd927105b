"""The data catalog served by codex-lineage on the live fleet: the fleet's own topic names, tables and jobs, a
tenant's graph domain once the record holds the tenant, the declared lineage graph from a topic, and bad input in
the API's envelope."""

from __future__ import annotations

import time
import uuid

import pytest

from moe_core.knowledge.graph.audit import audit_event
from tests.lineage.conftest import Keys, LineageFleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


def test_the_catalog_names_the_fleets_datasets_and_a_tenants_graph_domain(lineage_fleet: LineageFleet,
                                                                          keys: Keys, infra: dict[str, str]) -> None:
    namespace = lineage_fleet.env["MOE_TOPIC_NAMESPACE"]
    topics = lineage_fleet.get("/v1/catalog", keys.admin, kind="topic").json()["data"]
    requests = next(t for t in topics if t["name"] == f"{namespace}.requests.v1")
    assert requests["id"].startswith("dataset:kafka://") and "gateway" in requests["owners"]
    tables = lineage_fleet.get("/v1/catalog", keys.admin, q="signed hash chain").json()["data"]
    assert [t["name"] for t in tables] == [f"{lineage_fleet.schema}.audit_log"]
    tenant = new_namespace("catalog")
    lineage_fleet.publish_audit([audit_event(None, actor="graph-ingest", action="reviewed", subject="r1",
                                             tenant=tenant, response_id=f"r-{uuid.uuid4().hex[:8]}")],
                                service="graph-ingest")
    end, domains = time.monotonic() + 60, []
    while time.monotonic() < end and not domains:
        domains = lineage_fleet.get("/v1/catalog", keys.admin, kind="graph_domain", q=tenant).json()["data"]
        time.sleep(0.5)
    assert [d["facets"]["tenant"] for d in domains] == [tenant]
    one = lineage_fleet.get(f"/v1/catalog/{domains[0]['id']}", keys.admin)
    assert one.status_code == 200 and one.json()["owners"] == ["graph-ingest"]
    graph = lineage_fleet.get("/v1/catalog/lineage", keys.admin, node_id=requests["id"], depth="1",
                              direction="downstream").json()["graph"]
    assert {n["id"] for n in graph} >= {requests["id"], "job:moe-sovereign:planner"}
    assert all(n["depth"] <= 1 for n in graph)

    # the tenant's own admin sees its domain; another tenant's admin gets the 404 of an unknown entry, does not find
    # it in the list nor as a lineage node, and still sees the fleet-wide entries
    [own] = new_keys(infra["postgres"], ("catalog-own-admin", "admin", [tenant]))
    mine = lineage_fleet.get("/v1/catalog", own, kind="graph_domain").json()["data"]
    assert [d["facets"]["tenant"] for d in mine] == [tenant]
    assert lineage_fleet.get(f"/v1/catalog/{domains[0]['id']}", own).status_code == 200
    unknown = lineage_fleet.get("/v1/catalog/dataset:nowhere:nothing", keys.tenant_admin).json()["error"]
    refused = lineage_fleet.get(f"/v1/catalog/{domains[0]['id']}", keys.tenant_admin)
    assert refused.status_code == 404
    assert refused.json()["error"] == {**unknown, "message": f"no catalog entry {domains[0]['id']!r}"}
    node = lineage_fleet.get("/v1/catalog/lineage", keys.tenant_admin, node_id=domains[0]["id"])
    assert node.status_code == 404 and node.json()["error"]["code"] == "not_found", node.text
    listed = lineage_fleet.get("/v1/catalog", keys.tenant_admin).json()["data"]
    assert not [e for e in listed if e["facets"].get("tenant") not in (None, f"{keys.tenant}-other")], listed
    assert requests["id"] in {e["id"] for e in listed}  # the topics are the fleet's
    assert tenant in {e["facets"].get("tenant") for e in lineage_fleet.get("/v1/catalog", keys.admin).json()["data"]}


def test_bad_catalog_requests_get_the_apis_envelope(lineage_fleet: LineageFleet, keys: Keys) -> None:
    cases = [("/v1/catalog", None, {}, 401, "invalid_api_key"),
             ("/v1/catalog", keys.user, {}, 403, "insufficient_role"),
             ("/v1/catalog", keys.admin, {"kind": "lake"}, 400, "invalid_value"),
             ("/v1/catalog/dataset:nowhere:nothing", keys.admin, {}, 404, "not_found"),
             ("/v1/catalog/lineage", keys.admin, {}, 400, "invalid_value"),
             ("/v1/catalog/lineage", keys.admin, {"node_id": "dataset:nowhere:nothing"}, 404, "not_found"),
             ("/v1/catalog/lineage", keys.admin, {"node_id": "job:moe-sovereign:planner", "depth": "0"}, 400,
              "invalid_value"),
             ("/v1/catalog/lineage", keys.admin, {"node_id": "job:moe-sovereign:planner", "depth": "1.5"}, 400,
              "invalid_value"),
             ("/v1/catalog/lineage", keys.admin, {"node_id": "job:moe-sovereign:planner", "direction": "sideways"},
              400, "invalid_value")]
    kinds = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
             404: "invalid_request_error"}
    for path, key, params, status, code in cases:
        response = lineage_fleet.get(path, key, **params)
        assert response.status_code == status, (path, params, response.text)
        error = response.json()["error"]  # the fleet's one envelope, as the control plane and the edge answer
        assert set(error) == {"message", "type", "param", "code"} and error["message"], error
        assert (error["code"], error["type"]) == (code, kinds[status])
