"""The judge keeps a precision tool's computed figure verbatim: the prompt asks for it, and an answer that
paraphrased, rounded or dropped the figure gets the tool's exact result appended."""

from __future__ import annotations

import pytest

from merger import synthesis
from moe_core.contracts import Plan, PlannedTask, TaskResult, deadline_in
from moe_core.llm.modes import get_mode

pytestmark = pytest.mark.unit
ENV = {"response_id": "r1", "tenant_id": "t"}


def _tool(content: str, tid: str = "t1") -> TaskResult:
    return TaskResult(**ENV, deadline_at=deadline_in(60), task_id=tid, kind="tool", category="precision",
                      content=content, confidence="high")


def _expert(content: str) -> TaskResult:
    return TaskResult(**ENV, deadline_at=deadline_in(60), task_id="e1", kind="expert", category="general",
                      content=content, confidence="medium", model="m", server="s")


def test_the_figure_is_the_text_after_the_last_equals_sign() -> None:
    assert synthesis.computed_figure(_tool("17% of 2,340 = 397.8")) == "397.8"
    assert synthesis.computed_figure(_tool("SHA-256('a = b') = 5b1c")) == "5b1c"
    assert synthesis.computed_figure(_tool("2024-03-01 is a Friday")) == "2024-03-01 is a Friday"


def test_an_answer_that_kept_the_figure_is_unchanged() -> None:
    answer = "17% of 2,340 is 397.8, because 0.17 x 2340 = 397.8."
    assert synthesis.keep_computed(answer, [_tool("17% of 2,340 = 397.8"), _expert("about 400")]) == answer


def test_a_rounded_or_dropped_figure_is_appended_exactly_once() -> None:
    results = [_tool("17% of 2,340 = 397.8"), _tool("17% of 2,340 = 397.8", "t2"), _expert("about 400")]
    kept = synthesis.keep_computed("It is roughly 398.", results)
    assert kept == "It is roughly 398.\n\nComputed exactly: 17% of 2,340 = 397.8"


def test_without_tool_results_nothing_is_appended() -> None:
    assert synthesis.keep_computed("An answer.", [_expert("An answer.")]) == "An answer."


def test_the_judge_is_told_to_quote_tool_results_verbatim_only_when_there_are_some() -> None:
    plan = Plan(**ENV, deadline_at=deadline_in(60), mode="moe-orchestrator", question="Q?",
                tasks=[PlannedTask(task_id="t1", kind="tool", category="precision", instruction="x")])
    mode = get_mode("moe-orchestrator")
    with_tool = synthesis.judge_messages(plan, [_tool("1 + 1 = 2"), _expert("two")], "", mode)[0]["content"]
    without = synthesis.judge_messages(plan, [_expert("two")], "", mode)[0]["content"]
    assert "verbatim" in with_tool
    assert "verbatim" not in without
