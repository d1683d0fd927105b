"""`replay rerun --as-recorded`'s stage rows from a request's records, and `--today`'s per-task differences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from codex_lineage.as_recorded import digest, line, stages, versions_line
from codex_lineage.reproduce import compare, recorded_outputs
from codex_lineage.rerun import task_lines, version_lines
from moe_core.audit.records import AuditRecord

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _record(message_type: str, stage: str, payload: dict[str, Any], offset: int) -> AuditRecord:
    return AuditRecord(response_id="r1", topic="t", partition=0, offset=offset, broker_ts=NOW, tenant_id="acme",
                       message_type=message_type, stage=stage, created_at=NOW, payload=payload)


def _result(category: str, model: str, content: str) -> dict[str, Any]:
    return {"task_id": f"t-{category}", "kind": "expert", "category": category, "model": model,
            "server": "local", "confidence": "high", "content": content}


RECORDS = [
    _record("ChatRequest", "gateway", {"mode": "moe-orchestrator", "messages": [{"role": "user", "content": "Q"}]}, 1),
    _record("Plan", "planner", {"source": "llm", "planner_model": "planner-model", "tasks": [
        {"task_id": "t-general", "kind": "expert", "category": "general", "instruction": "Explain"}]}, 2),
    _record("ExpertTask", "planner", {"task_id": "t-general"}, 3),
    _record("TaskResult", "expert-worker", _result("general", "expert-model", "The moon pulls."), 4),
    _record("Answer", "merger", {"content": "Tides.", "models_used": [{"model": "expert-model",
                                                                       "category": "general"}]}, 5),
]


def test_every_stage_run_with_its_model_server_and_digests() -> None:
    rows = stages(RECORDS)
    assert [r["stage"] for r in rows] == ["request", "plan", "task", "answer"]
    task = rows[2]
    assert (task["model"], task["server"], task["instruction"], task["output"]) == (
        "expert-model", "local", digest("Explain"), digest("The moon pulls."))
    assert line(rows[1]) == f"plan     llm by planner-model: 1 tasks (expert:general), {rows[1]['digest']}"
    assert line(rows[3]) == f"answer   by merger  models general=expert-model  content {digest('Tides.')} (6 chars)"


def test_a_result_the_audit_received_before_its_plan_is_presented_after_it_with_its_instruction() -> None:
    arrived = [RECORDS[0], RECORDS[3], RECORDS[4], RECORDS[1], RECORDS[2]]  # the results topic was read first
    rows = stages(arrived)
    assert [r["stage"] for r in rows] == ["request", "plan", "task", "answer"]
    assert rows[2]["instruction"] == digest("Explain")


def test_todays_differences_per_task() -> None:
    before = [_result("general", "expert-model", "The moon pulls."), _result("code", "coder", "x = 1")]
    after = [_result("general", "expert-model-2", "The moon pulls hard."), _result("math", "solver", "2")]
    assert task_lines(before, before) == ["task:    expert:code: same (coder)",
                                          "task:    expert:general: same (expert-model)"]
    assert task_lines(before, after) == [
        "task:    expert:code: not run today",
        "task:    expert:general: model ['expert-model'] -> ['expert-model-2'], output differs",
        "task:    expert:math: only today"]


def test_each_stage_run_with_the_versions_it_recorded() -> None:
    judge = {"service": "merger", "config": "sha256:" + "a" * 64, "prompts": {"merger.judge": "sha256:" + "b" * 64}}
    records = [*RECORDS[:4], _record("Answer", "merger", {**RECORDS[4].payload, "versions": judge}, 5)]
    rows = stages(records)
    assert rows[3]["versions"] == {**judge, "policies": {}} and rows[0]["versions"] == {}
    assert versions_line(rows[3]) == (f"         merger config sha256:{'a' * 16}  prompts merger.judge=sha256:"
                                      f"{'b' * 16}")
    assert versions_line(rows[0]) == "         versions not recorded"
    today = {**judge, "prompts": {"merger.judge": "sha256:" + "c" * 64}}
    assert version_lines({"versions": judge}, {"versions": judge}, "answer") == ["answer:  versions same"]
    assert version_lines({"versions": judge}, {"versions": today}, "answer") == [
        "answer:  versions changed: prompt merger.judge"]
    # a stage run that decided by policy names the policies' version; another version today is a change
    decided = {**judge, "policies": {"moe/memory/decision": "sha256:" + "d" * 64}}
    [row] = stages([_record("Answer", "merger", {**RECORDS[4].payload, "versions": decided}, 5)])[-1:]
    assert versions_line(row).endswith(f"  policies moe/memory/decision=sha256:{'d' * 16}")
    newer = {**decided, "policies": {"moe/memory/decision": "sha256:" + "e" * 64}}
    assert version_lines({"versions": decided}, {"versions": newer}, "answer") == [
        "answer:  versions changed: policy moe/memory/decision"]
    assert version_lines({}, {"versions": today}, "plan") == ["plan:    versions not recorded then"]


def _replayed(payload: dict[str, Any], **update: Any) -> dict[str, Any]:
    return {**payload, **update}


def test_a_re_execution_with_the_recorded_answer_is_reproduced() -> None:
    plan, result, answer = (next(r.payload for r in RECORDS if r.message_type == t) for t in ("Plan", "TaskResult",
                                                                                                "Answer"))
    reproduced, lines = compare(RECORDS, plan, [result], answer)
    assert reproduced and lines == ["  plan     same: 1 tasks", "  task t-general same: expert:general",
                                    f"  answer   same: 6 chars, {digest('Tides.')}",
                                    "REPRODUCED: the answer is byte for byte the recorded one"]


def test_the_first_differing_stage_is_named_with_the_replay_error() -> None:
    plan, result = (next(r.payload for r in RECORDS if r.message_type == t) for t in ("Plan", "TaskResult"))
    error = "replay as recorded: expert-worker task t-general: the record holds no model call of it"
    failed = _replayed(result, content="", error="replay: …", model_outputs=[{"stage": "expert-worker",
                                                                              "task_id": "t-general", "error": error}])
    reproduced, lines = compare(RECORDS, plan, [failed], {"content": "Something else."})
    assert not reproduced
    assert lines[1] == f"  task t-general DIFFERS: expert:general ({error})"
    assert lines[-1] == f"NOT REPRODUCED: first differing stage: task t-general ({error})"


def test_recorded_outputs_count_a_republished_message_once_and_skip_replayed_ones() -> None:
    output = {"stage": "planner", "system": "sha256:a", "prompt": "sha256:b", "content": "{}"}
    plan = _record("Plan", "planner", {"tasks": [], "model_outputs": [output]}, 1)
    again = _record("Plan", "planner", {"tasks": [], "model_outputs": [output]}, 2)  # a redelivery
    replayed = _record("Answer", "merger", {"model_outputs": [{**output, "stage": "merger", "replayed": True}]}, 3)
    assert [o.stage for o in recorded_outputs([plan, again, replayed])] == ["planner"]
