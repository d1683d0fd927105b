"""The original's defaults (docs/seed-defaults.md): every row names a real setting whose default in the code is
the one the row declares, so a default cannot change without its row, and the table is what `make schemas`
writes now."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moe_core import docgen
from moe_core.docgen import seed_doc
from moe_core.seed import SeedDefault
from tests.deploy.doc_support import REPO

pytestmark = pytest.mark.unit
DOC = "docs/seed-defaults.md"


def test_every_row_names_a_setting_whose_default_is_the_rows() -> None:
    rows = seed_doc.rows(REPO)
    assert len(rows) >= 40
    assert seed_doc.mismatches(rows) == []


def test_the_originals_defaults_the_issue_lists_are_rows() -> None:
    settings = {row.seed.setting for row in seed_doc.rows(REPO)}
    for name in ("MOE_GRAPH_TRUST_DECAY_DAYS", "MOE_GRAPH_TRUST_DECAY_MIN", "moe_core.graph.trust:WEIGHT_HEALER",
                 "moe_core.graph.trust:WEIGHT_EXTRACTED", "moe_core.graph.trust:VERIFIED_BONUS",
                 "MOE_GRAPH_TRUST_FLOOR", "MOE_GRAPH_BLAST_RADIUS_MAX", "MOE_GRAPH_QUARANTINE_TTL_S",
                 "MOE_PLAN_CACHE_TTL_S", "MOE_GRAPH_CACHE_TTL_S", "MOE_SCORE_HALF_LIFE_S", "MOE_SCORE_COUNT_NEUTRAL",
                 "MOE_SCORE_ORDER", "MOE_PLANNER_TRIVIAL_MAX_WORDS", "MOE_EXPERT_HISTORY_TURNS",
                 "MOE_EXPERT_HISTORY_CHARS", "MOE_EXPERT_MAX_OUTPUT_CHARS", "MOE_CACHE_MIN_ANSWER_CHARS",
                 "MOE_CACHE_HARD_THRESHOLD", "MOE_CACHE_SOFT_THRESHOLD"):
        assert name in settings, f"{name}: no row in docs/seed-defaults.md"


def test_a_default_changed_without_its_row_is_caught() -> None:
    row = next(r for r in seed_doc.rows(REPO) if r.seed.setting == "MOE_PLAN_CACHE_TTL_S")
    assert seed_doc.mismatches([row]) == []
    changed = replace(row, defaults=(3600,))  # someone set the plan cache back to an hour
    assert "MOE_PLAN_CACHE_TTL_S: the code's default is 3600" in seed_doc.mismatches([changed])[0]
    missing = replace(row, defaults=())
    assert "no such setting" in seed_doc.mismatches([missing])[0]


def test_a_row_that_differs_must_say_why_and_really_differ() -> None:
    base = next(r for r in seed_doc.rows(REPO) if r.seed.setting == "MOE_CACHE_HARD_THRESHOLD")
    assert not base.seed.adopted and "measured" in base.seed.why
    silent = replace(base, seed=replace(base.seed, why=""))
    assert any("without saying why" in m for m in seed_doc.mismatches([silent]))
    equal = replace(base, seed=SeedDefault("X", "0.16", "MOE_CACHE_HARD_THRESHOLD", 0.16, ours=0.16, why="w"))
    assert any("both are 0.16" in m for m in seed_doc.mismatches([equal]))


def test_the_table_lists_every_row_and_is_what_make_schemas_writes() -> None:
    assert (REPO / DOC).read_text() == docgen.expected(REPO, DOC), f"{DOC}: run `make schemas`"
    table = seed_doc.table(REPO)
    assert table.count("\n") - 1 == len(seed_doc.rows(REPO))
    assert "| CACHE_MIN_RESPONSE_LEN | 150 chars | `150` | `MOE_CACHE_MIN_ANSWER_CHARS` | the original's |" in table
