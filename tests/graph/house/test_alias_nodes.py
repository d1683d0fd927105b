"""The alias nodes stay in step with the entities' alias_keys (moe_core.knowledge.graph.alias_nodes): every Cypher
statement of the project that sets an entity's alias_keys to anything but [] syncs its alias nodes (SYNC_ALIASES,
written out), every one that deletes an entity deletes its alias nodes, and no statement finds an entity by
`k IN e.alias_keys` (a pass over every entity the tenant sees) but the substring search. A static scan of the
module-level string constants under libs/ and services/."""

from __future__ import annotations

import re

import pytest

from moe_core.knowledge.graph.alias_nodes import ENSURE, SYNC_ALIASES
from tests.graph.house.test_lexicon_stamps import REPO, SET_CLAUSE, constants

pytestmark = pytest.mark.unit
ALIASES_SET = re.compile(r"\b\w+\.alias_keys\s*=(?!=)\s*(\S+)")
ENTITY_DELETED = re.compile(r"\(e:Entity\b[^)]*\)(?:(?!\bRETURN\b).)*\bDETACH DELETE e\b", re.S)
ALIAS_NODES_DELETED = ("CALL (e) { MATCH (e)<-[:ALIAS_OF]-(a:AliasKey) DETACH DELETE a }",
                       "CALL () { MATCH (a:AliasKey {tenant: $tenant}) DETACH DELETE a }")
LOOKUP_BY_LIST = re.compile(r"\bIN\s+\w+\.alias_keys\b")
SUBSTRING_SEARCH = "libs/moe_core/knowledge/graph/reads.py:SEARCH"  # `a CONTAINS $q`: no index finds a substring


def _flat(cypher: str) -> str:
    return " ".join(cypher.split())


def problems(cypher: str) -> list[str]:
    """What the statement misses to keep the alias nodes in step, or the scan it does."""
    out = []
    sets = [v for clause in SET_CLAUSE.findall(cypher) for v in ALIASES_SET.findall(clause)]
    if any(not v.startswith("[]") for v in sets) and _flat(SYNC_ALIASES) not in _flat(cypher):
        out.append("sets alias_keys without syncing the alias nodes")
    if ENTITY_DELETED.search(cypher) and not any(_flat(d) in _flat(cypher) for d in ALIAS_NODES_DELETED):
        out.append("deletes an entity without its alias nodes")
    if LOOKUP_BY_LIST.search(cypher):
        out.append("finds an entity by a pass over alias_keys")
    return out


def test_the_check_finds_an_unsynced_write_an_undeleted_alias_and_a_scan() -> None:
    assert problems("MATCH (e:Entity {uid: $uid}) SET e.aliases = $a, e.alias_keys = $k RETURN e.uid") \
        == ["sets alias_keys without syncing the alias nodes"]
    assert problems("MATCH (e:Entity {uid: $uid}) SET e.alias_keys = $k WITH e" + SYNC_ALIASES) == []
    assert problems("MERGE (e:Entity {uid: $uid}) ON CREATE SET e.aliases = [], e.alias_keys = [] RETURN e") == []
    assert problems("MATCH (e:Entity {uid: $uid}) DETACH DELETE e") == ["deletes an entity without its alias nodes"]
    assert problems("MATCH (e:Entity) WHERE $key IN e.alias_keys RETURN e") == ["finds an entity by a pass over "
                                                                                  "alias_keys"]
    assert problems("MATCH (e:Entity) WHERE any(k IN e.alias_keys WHERE k IN $keys) RETURN e") != []


def test_the_start_up_sync_syncs_as_every_writer_does() -> None:
    body = _flat(SYNC_ALIASES)
    assert body in _flat(ENSURE)


def test_every_alias_write_syncs_every_entity_delete_cleans_up_and_no_lookup_scans() -> None:
    found, checked = [], 0
    for root in ("libs", "services"):
        for path in sorted((REPO / root).rglob("*.py")):
            for name, text in constants(path).items():
                where = f"{path.relative_to(REPO)}:{name}"
                if ":Entity" in text and where != SUBSTRING_SEARCH:
                    checked += 1
                    found += [f"{where}: {p}" for p in problems(text)]
    assert checked > 20  # the scan sees the graph's statements
    assert found == []
