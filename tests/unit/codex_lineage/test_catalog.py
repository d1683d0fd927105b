"""The data catalog from the generated docs/catalog.json (moe_core.stage.catalog; tests/deploy keeps it in step with the
declarations) as codex-lineage names it: topics with their owners and consumers, tables with their owner, the
tenants' graph domains, search, and the declared lineage graph upstream and downstream to a depth."""

from __future__ import annotations

import pytest

from codex_lineage.catalog.entries import Names, entries, load, postgres_namespace, search
from codex_lineage.catalog.graph import lineage
from codex_lineage.lineage import Datasets
from moe_core.contracts import Topics
from moe_core.stage.catalog import CATALOG
from tests.support.fleet import REPO

pytestmark = pytest.mark.unit
KAFKA, GRAPH = "kafka://127.0.0.1:9092", "neo4j://127.0.0.1:7687"


@pytest.fixture(scope="module")
def items() -> list[dict[str, object]]:
    names = Names(Topics.for_namespace("moe"), Datasets(KAFKA, GRAPH, "chroma://127.0.0.1:8000"),
                  postgres_namespace("postgresql://moe:secret@127.0.0.1:5433/moe"), "audit", "moe-sovereign")
    return entries(load(REPO / CATALOG), names, ["acme"])


def _one(items: list[dict[str, object]], entry_id: str) -> dict[str, object]:
    [found] = [i for i in items if i["id"] == entry_id]
    return found


def test_entries_name_their_owners_as_declared(items: list[dict[str, object]]) -> None:
    requests = _one(items, f"dataset:{KAFKA}:moe.requests.v1")
    assert "gateway" in requests["owners"] and "planner" in requests["facets"]["consumers"]  # type: ignore[index,operator]
    keys = _one(items, "dataset:postgres://127.0.0.1:5433/moe:public.api_keys")
    assert keys["owners"] == ["control-plane"] and "gateway" in keys["facets"]["readers"]  # type: ignore[index,operator]
    assert "secret" not in str(items)  # the DSN's password never reaches the catalog
    log = _one(items, "dataset:postgres://127.0.0.1:5433/moe:audit.audit_log")
    assert log["owners"] == ["codex-lineage"]
    domain = _one(items, f"dataset:{GRAPH}:knowledge-graph/acme")
    assert domain["facets"]["parent"] == f"dataset:{GRAPH}:knowledge-graph"  # type: ignore[index]
    assert {i["kind"] for i in items} == {"topic", "table", "store", "graph_domain", "job"}


def test_search_by_words_and_kind(items: list[dict[str, object]]) -> None:
    assert [i["name"] for i in search(items, "API keys", "table")][:1] == ["public.api_keys"]
    assert search(items, "no-such-thing-anywhere", None) == []
    assert all(i["kind"] == "job" for i in search(items, None, "job"))


def test_lineage_upstream_and_downstream_to_a_depth(items: list[dict[str, object]]) -> None:
    requests = f"dataset:{KAFKA}:moe.requests.v1"
    down = {n["id"]: n for n in lineage(items, requests, 1, "downstream")["graph"]}
    assert "job:moe-sovereign:planner" in down and "job:moe-sovereign:gateway" not in down
    assert f"dataset:{KAFKA}:moe.plans.v1" not in down
    assert f"dataset:{KAFKA}:moe.plans.v1" in {n["id"] for n in lineage(items, requests, 2, "downstream")["graph"]}
    up = {n["id"] for n in lineage(items, requests, 1, "upstream")["graph"]}
    assert "job:moe-sovereign:gateway" in up and "job:moe-sovereign:planner" not in up
    planner = down["job:moe-sovereign:planner"]
    assert planner["type"] == "JOB" and {"origin": requests, "destination": planner["id"]} in planner["inEdges"]
    ingest = {n["id"] for n in lineage(items, "job:moe-sovereign:graph-ingest", 1, "upstream")["graph"]}
    assert f"dataset:{KAFKA}:moe.ingest.v1" in ingest
    with pytest.raises(KeyError):
        lineage(items, "dataset:nowhere:nothing", 1, "both")
