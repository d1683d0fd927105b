"""Every Cypher statement of the project that writes an entity's name, key or aliases stamps the entity with its
tenant's lexicon counter, and every one that deletes an entity gives the tenant a new epoch (or deletes its version
node): graph-rag reads only the entities stamped since its cached lexicon (graph_rag.retrieval). A static scan of
the module-level string constants under libs/ and services/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]
ENTITY_VAR = re.compile(r"\((\w+):Entity\b")
CLAUSE_END = r"(?=\b(?:WITH|RETURN|MATCH|OPTIONAL|MERGE|UNWIND|CALL|WHERE|DELETE|DETACH|REMOVE|FOREACH)\b|}|$)"
SET_CLAUSE = re.compile(r"\bSET\b(.*?)" + CLAUSE_END, re.S)
LEXICON_FIELD = re.compile(r"\b(\w+)\.(?:name|key|alias_keys)\s*=(?!=)")
DELETED = re.compile(r"\bDELETE\s+(\w+)")
COUNTED = "SET v.lex = coalesce(v.lex, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())"
NEW_EPOCH = "SET v.epoch = randomUUID()"
VERSION_DELETED = re.compile(r"\(v:GraphVersion [^)]*\)\s*DELETE v\b")


def problems(cypher: str) -> list[str]:
    """What the statement misses: a stamp for an entity whose lexicon fields it sets, a new epoch for one it deletes."""
    entities = set(ENTITY_VAR.findall(cypher))
    out = []
    written = {var for clause in SET_CLAUSE.findall(cypher) for var in LEXICON_FIELD.findall(clause)} & entities
    for var in sorted(written):
        if COUNTED not in cypher or f"SET {var}.lex = v.lex" not in cypher:
            out.append(f"writes {var}'s lexicon fields without stamping it")
    if set(DELETED.findall(cypher)) & entities and NEW_EPOCH not in cypher and not VERSION_DELETED.search(cypher):
        out.append("deletes an entity without a new epoch")
    return out


def constants(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
            if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}


def test_the_check_finds_an_unstamped_write_and_an_unannounced_delete() -> None:
    assert problems("MERGE (e:Entity {uid: $uid}) ON CREATE SET e.name = $name, e.key = $key RETURN e.uid") \
        == ["writes e's lexicon fields without stamping it"]
    assert problems("MATCH (x:Entity {uid: $uid}) DETACH DELETE x") == ["deletes an entity without a new epoch"]
    assert problems("MATCH (e:Entity) WHERE e.key = $key RETURN e.uid") == []  # a read
    assert problems("MATCH ()-[r:REL {id: $id}]->() SET r.name = $x DELETE r") == []  # not an entity


def test_every_entity_write_stamps_and_every_entity_delete_starts_an_epoch() -> None:
    found, checked = [], 0
    for root in ("libs", "services"):
        for path in sorted((REPO / root).rglob("*.py")):
            for name, text in constants(path).items():
                if ":Entity" in text:
                    checked += 1
                    found += [f"{path.relative_to(REPO)}:{name}: {p}" for p in problems(text)]
    assert checked > 20  # the scan sees the graph's statements
    assert found == []
