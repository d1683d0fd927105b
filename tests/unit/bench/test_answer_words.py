"""bench.token_stages --answer-words: the experts' and the judge's scripted answers grow by that many words, the
expert's confidence line stays its last line (the expert-worker reads it), and nothing else of the script changes."""

from __future__ import annotations

import pytest

from bench.scenarios import EXPERT_MODEL, SCRIPT, script

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("words", [1, 17, 200])
def test_the_answers_grow_by_the_words_asked_and_keep_the_confidence_line(words: int) -> None:
    longer = script(words)
    for model in (EXPERT_MODEL, "judge-model"):
        assert len(longer["replies"][model].split()) == len(SCRIPT["replies"][model].split()) + words
    assert longer["replies"][EXPERT_MODEL].splitlines()[-1] == SCRIPT["replies"][EXPERT_MODEL].splitlines()[-1]
    assert longer["replies"]["planner-model"] == SCRIPT["replies"]["planner-model"]
    assert longer["schemas"] == SCRIPT["schemas"] and longer["default"] == SCRIPT["default"]


def test_no_words_is_the_script_as_the_bench_runs_it() -> None:
    assert script(0) is SCRIPT and script() is SCRIPT
