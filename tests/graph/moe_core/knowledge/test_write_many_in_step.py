"""write_many.WRITE_MANY does in one statement what four others do (Cypher may not be built from text, so it writes
them out again): it must stay in step with them. It makes entities as store.CREATE_ENTITIES makes them, asserts
relations as store.ASSERT_RELATIONS asserts them, moves the version as store.BUMP_VERSION moves it, and counts the
tenant after the write as measure.TENANT_SIZE_VERSIONED counts it (the drift checks' "after", compared with the
"before" checks.RESOLVE_MANY_COUNTED counts alike)."""

from __future__ import annotations

import pytest

from moe_core.knowledge.graph.measure import TENANT_SIZE_VERSIONED
from moe_core.knowledge.graph.store import ASSERT_RELATIONS, BUMP_VERSION, CREATE_ENTITIES
from moe_core.knowledge.graph.write_many import WRITE_MANY

pytestmark = pytest.mark.unit


def _flat(cypher: str) -> str:
    return " ".join(cypher.split())


def _lines(cypher: str) -> list[str]:
    return [line for line in cypher.strip().splitlines() if line.strip()]


def test_it_makes_entities_as_create_entities_does() -> None:
    body = _flat(CREATE_ENTITIES).replace("UNWIND $rows AS row", "UNWIND $entities AS row")
    assert body in _flat(WRITE_MANY)


def test_it_asserts_relations_as_assert_relations_does() -> None:
    lines = _lines(ASSERT_RELATIONS)
    assert lines[-2].startswith("RETURN r.id AS id")  # all but its RETURN
    assert _flat("\n".join(lines[:-2])) in _flat(WRITE_MANY)


def test_it_moves_the_version_as_bump_version_does() -> None:
    assert _flat("\n".join(_lines(BUMP_VERSION)[1:])).replace("{tenant: t}", "{tenant: $tenant}") in _flat(WRITE_MANY)


def test_it_counts_the_tenant_as_tenant_size_versioned_does() -> None:
    for line in _lines(TENANT_SIZE_VERSIONED):
        if line.startswith(("OPTIONAL MATCH", "CALL")):
            assert _flat(line) in _flat(WRITE_MANY), line
    assert "WITH written, existing, [v.n, v.lex, v.epoch] AS version" in WRITE_MANY
