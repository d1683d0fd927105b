"""Pure stage logic: plan sanitising, confidence parsing, merging decisions."""

from __future__ import annotations

import json

import pytest

from expert_worker.core import parse_output
from merger import core as merger_core
from merger.synthesis import fast_path
from moe_core.contracts import ExpertTask, Plan, PlannedTask, TaskResult, Usage, deadline_in
from moe_core.llm.modes import get_mode
from planner.core import fallback_plan, sanitise

pytestmark = pytest.mark.unit
CATEGORIES = ["general", "math", "science"]


def test_sanitise_keeps_good_tasks_and_drops_the_rest() -> None:
    raw = json.dumps({"tasks": [
        {"category": "math", "instruction": "Compute 2+2"},
        {"category": "astrology", "instruction": "Read the stars"},
        {"category": "science", "instruction": ""},
        {"category": "math", "instruction": "compute 2+2"},
        "not a task",
        {"category": "general"},
        {"category": "general", "instruction": "Explain it"},
    ]})
    tasks = sanitise(raw, CATEGORIES, max_tasks=4)
    assert [(t.task_id, t.category, t.instruction) for t in tasks] == [
        ("t1", "math", "Compute 2+2"), ("t2", "general", "Explain it")]


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"tasks": 3}', '{"tasks": [{"category": "x"}]}', "null"])
def test_sanitise_returns_nothing_for_unusable_output(raw: str) -> None:
    assert sanitise(raw, CATEGORIES, max_tasks=4) == []


def test_sanitise_caps_the_number_of_tasks() -> None:
    raw = json.dumps({"tasks": [{"category": "general", "instruction": f"part {i}"} for i in range(9)]})
    assert len(sanitise(raw, CATEGORIES, max_tasks=3)) == 3


def test_fallback_is_one_general_task_with_the_question() -> None:
    [task] = fallback_plan("Why is the sky blue?")
    assert (task.task_id, task.category, task.instruction) == ("t1", "general", "Why is the sky blue?")


@pytest.mark.parametrize(("text", "content", "confidence"), [
    ("Paris.\nCONFIDENCE: high", "Paris.", "high"),
    ("Paris.\n**Confidence:** Low", "Paris.", "low"),
    ("Paris.", "Paris.", "medium"),
    ("Confidence: medium\nParis.", "Paris.", "medium"),
])
def test_confidence_tag_is_parsed_and_removed(text: str, content: str, confidence: str) -> None:
    assert parse_output(text, 1000) == (content, confidence)


def test_output_is_capped() -> None:
    assert len(parse_output("x" * 500, 100)[0]) == 100


def _plan(n: int) -> Plan:
    return Plan(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                question="q", tasks=[PlannedTask(task_id=f"t{i}", category="general", instruction="i")
                                     for i in range(1, n + 1)],
                planner_model="p", usage=Usage(prompt_tokens=10, completion_tokens=5))


def _result(task_id: str, confidence: str = "medium", content: str = "answer", error: str | None = None,
            category: str = "general") -> TaskResult:
    return TaskResult(response_id="r", tenant_id="t", deadline_at=deadline_in(30), task_id=task_id,
                      category=category, content=content, confidence=confidence, error=error,  # type: ignore[arg-type]
                      model="m", server="s", usage=Usage(prompt_tokens=3, completion_tokens=2))


def test_fast_path_only_for_one_high_confidence_result() -> None:
    mode = get_mode("moe-orchestrator")
    assert fast_path(_plan(1), {"t1": _result("t1", "high")}, mode) is not None
    assert fast_path(_plan(1), {"t1": _result("t1", "medium")}, mode) is None
    two = {"t1": _result("t1", "high"), "t2": _result("t2", "high", category="math")}
    assert fast_path(_plan(2), two, mode) is None


def test_missing_and_usage_are_counted_over_every_call() -> None:
    plan = _plan(2)
    results = {"t1": _result("t1")}
    assert merger_core.missing_tasks(plan, results) == ["t2"]
    usage = merger_core.total_usage(plan, results, Usage(prompt_tokens=1, completion_tokens=1))
    assert (usage.prompt_tokens, usage.completion_tokens) == (14, 8)


def test_partial_answer_says_what_is_missing() -> None:
    plan = _plan(2).model_copy(update={"tasks": [
        PlannedTask(task_id="t1", category="general", instruction="a"),
        PlannedTask(task_id="t2", category="math", instruction="b")]})
    answer = merger_core.partial_answer(plan, {"t1": _result("t1", content="half")}, plan.child_fields())
    assert answer.finish_reason == "deadline"
    assert answer.missing == ["math"]
    assert answer.content.startswith("half") and "math" in answer.content
    assert answer.error is None


def test_partial_answer_without_results_is_a_deadline_error() -> None:
    plan = _plan(1)
    answer = merger_core.partial_answer(plan, {}, plan.child_fields())
    assert answer.error is not None and answer.error.code == "deadline_exceeded"


def test_results_rank_by_confidence_and_skip_errors() -> None:
    results = {"t1": _result("t1", "low"), "t2": _result("t2", "high"), "t3": _result("t3", error="boom")}
    assert [r.task_id for r in merger_core.usable(results)] == ["t2", "t1"]


def test_expert_task_round_trips() -> None:
    task = ExpertTask(response_id="r", tenant_id="t", deadline_at=deadline_in(5), task_id="t1",
                      category="general", instruction="i", question="q")
    assert ExpertTask.model_validate_json(task.model_dump_json()) == task


def test_a_failed_answer_tells_the_client_the_kind_and_keeps_servers_and_models_for_the_record() -> None:
    """A 503 named the fleet's inference hosts and models to any API client (stop 42's finding): the client's
    message has the failure kinds and the response id; which server and model failed is the record's detail."""
    errors = {"t1": "connect: All connection attempts failed (server=gpu-node-7.bank.internal, model=qwen2.5-72b)",
              "t2": "timeout: no answer in 30 s (server=gpu-node-9.bank.internal, model=llama3-70b); http_status: "
                    "Server error '502 Bad Gateway' for url 'http://10.4.0.9:8080/v1/chat/completions' "
                    "(server=gpu-node-3, model=mistral)"}
    answer = merger_core.failed_answer(_plan(2), {k: _result(k, "low", "", v) for k, v in errors.items()})
    assert answer.error is not None and answer.error.code == "inference_unavailable"
    said = answer.error.message
    assert said == ("no expert could answer (connect, http_status, timeout); the fleet's operators find each model's "
                    "reason under the response id r")
    for secret in ("gpu-node", "10.4.0.9", "qwen", "llama", "mistral", "server="):
        assert secret not in said and secret in answer.error.detail
    too_long = merger_core.failed_answer(_plan(1), {"t1": _result("t1", "low", "", "context_length: the request "
                                                                   "exceeds the available context size (server=a, "
                                                                   "model=secret-model)")})
    assert too_long.error is not None and too_long.error.code == "context_length_exceeded"
    assert "secret-model" not in too_long.error.message and "secret-model" in too_long.error.detail
