"""A near cache entry the guards reject (another number, an opposite word) is logged at DEBUG, not INFO: the
decision is per candidate, up to five a lookup, on the request's path (issue 52: the bench's full questions, one
template in another year each, made ~5 INFO lines a request)."""

from __future__ import annotations

import logging

import pytest

from planner.semantic_cache import Candidate, decide

pytestmark = pytest.mark.unit
QUESTION = "Compare Rome and Athens as they were in the year 1025: explain in detail their trade."


def near(year: int) -> Candidate:
    return Candidate(key=f"k{year}", question=QUESTION.replace("1025", str(year)), answer="An answer.",
                     distance=0.05)


def test_a_rejected_near_entry_is_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="planner.semantic_cache"):
        lookup = decide([near(1020), near(1021)], QUESTION, hard=0.1, soft=0.2, max_few_shot=2)
    assert lookup.hit is None and len(lookup.few_shot) == 2  # rejected as hits, kept as examples: as before
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="planner.semantic_cache"):
        decide([near(1020)], QUESTION, hard=0.1, soft=0.2, max_few_shot=2)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] and "numbers differ" in caplog.text
