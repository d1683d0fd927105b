"""Cypher may not be built from text (tests/unit/house: test_no_cypher_from_text), so a statement that does two
others' work in one round trip writes them out again. It must stay in step with them: checks.RESOLVE_MANY_COUNTED
resolves names as RESOLVE_MANY does and counts the tenant as measure.TENANT_SIZE does (the drift check's "before"
count, compared with the "after" one TENANT_SIZE_VERSIONED gives), and both read the tenant's version alike (the
"before" is not counted again while the version is the one of the last "after": measure.Sizes)."""

from __future__ import annotations

import re

import pytest

from moe_core.knowledge.graph.checks import RESOLVE_MANY, RESOLVE_MANY_COUNTED
from moe_core.knowledge.graph.measure import TENANT_SIZE, TENANT_SIZE_VERSIONED

pytestmark = pytest.mark.unit


def _flat(cypher: str) -> str:
    return " ".join(cypher.split())


def test_the_counted_resolution_resolves_as_resolve_many_does() -> None:
    assert _flat(RESOLVE_MANY) in _flat(RESOLVE_MANY_COUNTED)


def test_the_counted_resolution_counts_as_tenant_size_does() -> None:
    counts = [line for line in TENANT_SIZE.strip().splitlines() if line.startswith("CALL")]
    assert len(counts) == 2
    for line in counts:
        assert _flat(line) in _flat(RESOLVE_MANY_COUNTED), line
        assert _flat(line) in _flat(TENANT_SIZE_VERSIONED), line
    assert re.search(r"RETURN found, version, entities, relations\s*$", RESOLVE_MANY_COUNTED)


def test_the_before_and_after_read_the_same_version() -> None:
    version = TENANT_SIZE_VERSIONED.strip().splitlines()[:2]
    assert version[1] == "WITH [v.n, v.lex, v.epoch] AS version"
    assert _flat(version[0]) in _flat(RESOLVE_MANY_COUNTED)
    assert "WITH found, [v.n, v.lex, v.epoch] AS version" in RESOLVE_MANY_COUNTED
