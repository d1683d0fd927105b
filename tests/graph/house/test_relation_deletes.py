"""Every Cypher statement of the project that deletes a relation (and no entity, whose deletion gives the tenant a new
epoch: test_lexicon_stamps) moves its tenant's version, GraphVersion.n, or deletes the version node: graph-rag keys
its cached facts on n (graph_rag.retrieval.CONTEXT) and graph-ingest reuses a tenant's last count while its version
has not moved (moe_core.knowledge.graph.measure.Sizes), so a relation deleted without it stays in both. A static scan
of the module-level string constants under libs/ and services/."""

from __future__ import annotations

import re

import pytest

from tests.graph.house.test_lexicon_stamps import REPO, VERSION_DELETED, constants

pytestmark = pytest.mark.unit
RELATION_VAR = re.compile(r"\[(\w+):REL\b")
DELETED = re.compile(r"\bDELETE\s+(\w+)")
ENTITY_DELETED = re.compile(r"\bDETACH\s+DELETE\s+\w+")
MOVES_N = "SET v.n = coalesce(v.n, 0) + 1"


def problems(cypher: str) -> list[str]:
    relations = set(RELATION_VAR.findall(cypher))
    deleted = set(DELETED.findall(cypher)) & relations
    if deleted and MOVES_N not in cypher and not VERSION_DELETED.search(cypher):
        return [f"deletes relation {', '.join(sorted(deleted))} without moving the tenant's version"]
    return []


def test_the_check_finds_an_unannounced_relation_delete() -> None:
    assert problems("MATCH ()-[r:REL {id: $id}]->() DELETE r RETURN r.id") \
        == ["deletes relation r without moving the tenant's version"]
    assert problems("MATCH ()-[r:REL {id: $id}]->() WITH r, r.tenant AS t DELETE r WITH t "
                    "MERGE (v:GraphVersion {tenant: t}) SET v.n = coalesce(v.n, 0) + 1") == []
    assert problems("MATCH ()-[r:REL {id: $id}]->() SET r.trust = 0.5") == []  # not a delete


def test_every_relation_delete_moves_the_tenants_version() -> None:
    found, checked = [], 0
    for root in ("libs", "services"):
        for path in sorted((REPO / root).rglob("*.py")):
            for name, text in constants(path).items():
                if RELATION_VAR.search(text) and DELETED.search(text) and not ENTITY_DELETED.search(text):
                    checked += 1
                    found += [f"{path.relative_to(REPO)}:{name}: {p}" for p in problems(text)]
    assert checked >= 2  # the scan sees lint's deletions
    assert found == []
