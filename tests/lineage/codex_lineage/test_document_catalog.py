"""Tenants' document sets in codex-lineage's data catalog, on the real broker and stores (Kafka, Postgres, Chroma):
documents a tenant uploads through the control plane (POST /v1/memory/documents) appear as a `document_set` entry
per tenant and set, with its tenant, data class, retention and documents; a deleted document leaves it; search finds
the set by its titles; the declared lineage links it to its writer and reader; another kind of bad input is 400."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from fleetlib import api as fleetlib_api

from tests.lineage.conftest import LineageFleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def fleet(lineage_fleet: LineageFleet) -> LineageFleet:
    """The tier's lean fleet (a start of its own cost ~20 s of setup): its control plane keeps the tenant's documents
    in the shared Chroma, started here; the tenant, its keys and the titles are this test's own."""
    fleetlib_api.ensure_up(["chroma"])
    return lineage_fleet


def _upload(fleet: LineageFleet, key: str, title: str, document_set: str) -> dict[str, Any]:
    reply = httpx.post(f"{fleet.control_plane}/v1/memory/documents", headers={"Authorization": f"Bearer {key}"},
                       json={"title": title, "source": f"{title}.md", "document_set": document_set,
                             "domain": "legal", "text": f"# {title}\n\nThe terms of {title} apply from 2027."},
                       timeout=120)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _sets(fleet: LineageFleet, key: str, tenant: str, ready: Any) -> list[dict[str, Any]]:
    end, found = time.monotonic() + 90, []
    while time.monotonic() < end:
        found = fleet.get("/v1/catalog", key, kind="document_set", q=tenant).json()["data"]
        if ready(found):
            return list(found)
        time.sleep(0.5)
    raise AssertionError(found)


def test_a_tenants_document_sets_are_catalog_entries(fleet: LineageFleet, infra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = new_namespace("dc")
    [admin, stranger, operator] = new_keys(infra["postgres"], ("dc-admin", "admin", [tenant]),
                                           ("dc-stranger", "admin", [f"{tenant}-other"]),
                                           ("dc-operator", "operator", [f"{tenant}-ops"]))
    kept = _upload(fleet, admin, f"Lease contract {tag}", "contracts")
    gone = _upload(fleet, admin, f"Old lease {tag}", "contracts")
    _upload(fleet, admin, f"Staff handbook {tag}", "handbooks")
    deleted = httpx.delete(f"{fleet.control_plane}/v1/memory/documents/{gone['id']}",
                           headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    assert deleted.status_code == 200, deleted.text

    found = _sets(fleet, admin, tenant, lambda s: len(s) == 2 and all(
        e["facets"]["documents"] == 1 for e in s))
    by_set = {e["facets"]["document_set"]: e for e in found}
    contracts = by_set["contracts"]
    assert contracts["id"].endswith(f":memory/{tenant}/contracts") and contracts["id"].startswith("dataset:chroma://")
    assert contracts["owners"] == ["control-plane"] and contracts["facets"]["tenant"] == tenant
    assert [d["id"] for d in contracts["facets"]["items"]] == [kept["id"]]
    assert contracts["facets"]["items"][0]["sha256"] == kept["sha256"]
    assert contracts["facets"]["domains"] == ["legal"] and contracts["facets"]["chunks"] >= 1
    assert contracts["facets"]["retention"]["days"] is None and "DELETE" in contracts["facets"]["retention"]["rule"]
    assert contracts["classification"] == {"class": "internal", "marking": "INTERN"}  # the tenant's (default) class

    # search by a title's words and by class; one entry by its id; its declared lineage
    hits = fleet.get("/v1/catalog", admin, q=f"handbook {tag}").json()["data"]
    assert [h["facets"]["document_set"] for h in hits] == ["handbooks"]
    assert fleet.get("/v1/catalog", admin, q=f"old lease {tag}").json()["data"] == []  # deleted
    internal = fleet.get("/v1/catalog", admin, classification="internal", kind="document_set").json()["data"]
    assert contracts["id"] in {e["id"] for e in internal}
    one = fleet.get(f"/v1/catalog/{contracts['id']}", admin)
    assert one.status_code == 200 and one.json()["facets"]["documents"] == 1
    graph = fleet.get("/v1/catalog/lineage", admin, node_id=contracts["id"], depth="1").json()["graph"]
    assert {n["id"] for n in graph} == {contracts["id"], "job:moe-sovereign:control-plane",
                                        "job:moe-sovereign:graph-rag"}
    assert fleet.get("/v1/catalog", admin, kind="documents").status_code == 400
    assert fleet.get(f"/v1/catalog/dataset:chroma://x:memory/{tenant}/nope", admin).status_code == 404

    # another tenant's admin: the set is a 404 like an unknown one, not listed, not found by its title; the
    # fleet operator sees it
    for path, params in ((f"/v1/catalog/{contracts['id']}", {}), ("/v1/catalog/lineage", {"node_id": contracts["id"]})):
        refused = fleet.get(path, stranger, **params)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", refused.text
    assert fleet.get("/v1/catalog", stranger, q=tenant).json()["data"] == []
    assert fleet.get("/v1/catalog", stranger, q=f"handbook {tag}").json()["data"] == []
    assert {e["id"] for e in fleet.get("/v1/catalog", operator, q=tenant, kind="document_set").json()["data"]} == {
        e["id"] for e in found}
    assert fleet.get(f"/v1/catalog/{contracts['id']}", operator).status_code == 200
