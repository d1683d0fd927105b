"""The original's defaults (docs/seed-defaults.md): every row names a real setting whose default in the code is
the one the row declares, so a default cannot change without its row, and the table is what `make schemas`
writes now."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from moe_core.runtime.seed import SeedDefault
from moe_tools import docgen
from moe_tools.docgen import seed_doc
from tests.deploy.doc_support import REPO

pytestmark = pytest.mark.unit
DOC = "docs/seed-defaults.md"


def test_every_row_names_a_setting_whose_default_is_the_rows() -> None:
    rows = seed_doc.rows(REPO)
    assert len(rows) >= 40
    assert seed_doc.mismatches(rows) == []


def test_the_originals_defaults_the_issue_lists_are_rows() -> None:
    settings = {row.seed.setting for row in seed_doc.rows(REPO)}
    for name in ("MOE_GRAPH_TRUST_DECAY_DAYS", "MOE_GRAPH_TRUST_DECAY_MIN",
                 "moe_core.knowledge.graph.trust:WEIGHT_HEALER",
                 "moe_core.knowledge.graph.trust:WEIGHT_EXTRACTED", "moe_core.knowledge.graph.trust:VERIFIED_BONUS",
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


# The original's defaults as its documentation states them (seed 001's Configuration Reference and Cache Key
# Reference, 002's Configuration): row name -> (where the seed states it, the value as written, in our unit).
SEED_STATES = {
    "CACHE_HIT_THRESHOLD": ("CACHE_HIT_THRESHOLD |", "0.15", 0.15),
    "SOFT_CACHE_THRESHOLD": ("SOFT_CACHE_THRESHOLD |", "0.50", 0.5),
    "SOFT_CACHE_MAX_EXAMPLES": ("SOFT_CACHE_MAX_EXAMPLES |", "2", 2),
    "CACHE_MIN_RESPONSE_LEN": ("CACHE_MIN_RESPONSE_LEN |", "150", 150),
    "MAX_EXPERT_OUTPUT_CHARS": ("MAX_EXPERT_OUTPUT_CHARS |", "2400", 2400),
    "EXPERT_TIER_BOUNDARY_B": ("EXPERT_TIER_BOUNDARY_B |", "20", 20),
    "EXPERT_MIN_SCORE": ("EXPERT_MIN_SCORE |", "0.3", 0.3),
    "EXPERT_MIN_DATAPOINTS": ("EXPERT_MIN_DATAPOINTS |", "5", 5),
    "HISTORY_MAX_TURNS": ("HISTORY_MAX_TURNS |", "4", 4),
    "HISTORY_MAX_CHARS": ("HISTORY_MAX_CHARS |", "3000", 3000),
    "PLANNER_TIMEOUT": ("PLANNER_TIMEOUT |", "300", 300),
    "EXPERT_TIMEOUT": ("EXPERT_TIMEOUT |", "900", 900),
    "JUDGE_TIMEOUT": ("JUDGE_TIMEOUT |", "900", 900),
    "CLAUDE_CODE_PROFILES": ("CLAUDE_CODE_PROFILES |", "[]", []),
    "TOOL_MAX_TOKENS": ("TOOL_MAX_TOKENS |", "8192", 8192),
    "REASONING_MAX_TOKENS": ("REASONING_MAX_TOKENS |", "16384", 16384),
    "LOG_LEVEL": ("LOG_LEVEL", "INFO", "INFO"),
    "plan cache (moe:plan:*) TTL": ("| Plan cache |", "30 min", 1800),
    "GraphRAG cache (moe:graph:*)": ("| GraphRAG cache |", "1 h", 3600),
    "response metadata (moe:response:*) TTL": ("| Response metadata |", "7 days", 7 * 86400),
    "planner patterns (moe:planner_success)": ("| Planner patterns |", "180 days", 180),
}
SEED_DIR = Path(os.environ.get("MOE_SEED_DIR", "/work/shared/seeds"))  # the original's documentation, if present


def test_every_default_the_seed_states_is_a_row_with_the_seeds_value() -> None:
    rows = {row.seed.original: row.seed for row in seed_doc.rows(REPO)}
    for name, (_, text, value) in SEED_STATES.items():
        assert name in rows, f"{name}: the original states {text}, docs/seed-defaults.md has no row"
        assert text in rows[name].seed, f"{name}: the row says the original's is {rows[name].seed!r}, not {text}"
        assert rows[name].value == value, f"{name}: the original's {text} is {value!r} in our unit"


@pytest.mark.skipif(not SEED_DIR.is_dir(), reason="the original's documentation is not on this machine")
def test_the_seed_states_those_values() -> None:
    """Against the seed documents themselves: each value is written right after its name there."""
    text = " ".join(p.read_text() for p in sorted(SEED_DIR.glob("*.txt")))
    for name, (anchor, value, _) in SEED_STATES.items():
        at = text.find(anchor)
        assert at >= 0, f"{name}: {anchor!r} not in the seed"
        assert value in text[at + len(anchor):at + len(anchor) + 60], f"{name}: the seed does not state {value}"
