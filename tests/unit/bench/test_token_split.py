"""bench.token_split (issue 52, item 4): a call's parts add up to what the scripted server counted, each call of the
record is named by its template (or by its stage and task), and joined to the server's view of it once."""

from __future__ import annotations

from typing import Any

import pytest

from bench import token_split
from bench.token_split import join, named_calls, parts, summarise, system_digest
from merger import synthesis
from moe_core.contracts import FewShot, Plan, PlannedTask, TaskResult, deadline_in
from moe_core.llm.modes import get_mode
from tests.support.scripted_core import completion_tokens, prompt_tokens

pytestmark = pytest.mark.unit
QUESTION = "Compare lithium and osmium as they were in the year 1003: explain their history."
FIELDS: dict[str, Any] = {"response_id": "r", "tenant_id": "t", "deadline_at": deadline_in(60)}


def _judge() -> list[dict[str, str]]:
    example = FewShot(question="Old Q?", answer="Old A.", distance=0.2)
    plan = Plan(**FIELDS, mode="moe-orchestrator", question=QUESTION, source="llm", few_shot=[example],
                tasks=[PlannedTask(task_id="t1", category="general", instruction="The picture."),
                       PlannedTask(task_id="g1", kind="graph", category="knowledge_graph", instruction="Graph.")])
    # (an expert below high: the judge is shown the cache's example, merger.synthesis.cache_example_needed)
    results = [TaskResult(**FIELDS, task_id="t1", category="general", confidence="medium", content="Expert says so."),
               TaskResult(**FIELDS, task_id="g1", kind="graph", category="knowledge_graph", confidence="high",
                          content="Lithium IS_A Element")]
    return synthesis.judge_messages(plan, results, "Both agree.", get_mode(None))


def test_the_parts_of_a_judge_call_add_up_to_the_server_s_count() -> None:
    messages, reply = _judge(), "One merged answer."
    split = parts(messages, reply, {QUESTION})
    assert sum(split.values()) == prompt_tokens(messages) + completion_tokens(reply)
    assert split["question"] == len(f"Question: {QUESTION}".split())
    assert split["graph context"] == len("#1 knowledge graph/knowledge_graph, high:\nLithium IS_A Element".split())
    assert split["thinking notes"] == 5 and split["completion"] == 3  # "Thinking so far:" + "Both agree."
    assert {"template", "sources", "cache example"} <= set(split)


def test_an_expert_s_examples_are_told_from_its_template() -> None:
    messages = [{"role": "system", "content": "You are X.\n\nEarlier answers to similar (not identical) questions: Q"},
                {"role": "user", "content": "old turn"}, {"role": "user", "content": QUESTION}]
    assert parts(messages, "ok", {QUESTION}) == {"template": 3, "few-shot": 8, "history": 2,
                                                 "question": len(QUESTION.split()), "completion": 1}


def test_record_calls_are_named_and_joined_to_the_server_s_calls_once() -> None:
    judge = _judge()
    digest = system_digest(judge)
    expert = [{"role": "system", "content": "You are an expert plus examples"}, {"role": "user", "content": "Do."}]
    record: list[dict[str, Any]] = [
              {"task_id": "t1", "category": "general"},
              {"versions": {"prompts": {"merger.judge": digest}},
               "model_outputs": [{"stage": "merger", "system": digest, "prompt_tokens": prompt_tokens(judge),
                                  "completion_tokens": 3}]},
              {"task_id": "t1", "category": "general",
               "model_outputs": [{"stage": "expert-worker", "task_id": "t1", "system": system_digest(expert),
                                  "prompt_tokens": 7, "completion_tokens": 1}]}]
    calls = named_calls(record)
    assert [c["template"] for c in calls] == ["merger.judge", "expert.general (+ examples)"]
    seen = [{"messages": judge, "reply": "One merged answer.", "prompt_tokens": prompt_tokens(judge),
             "completion_tokens": 3}]
    joined = join(calls, seen, {QUESTION})
    assert "unsplit" not in joined[0]["parts"] and joined[1]["parts"] == {"unsplit": 8}  # the server saw no expert
    summary = summarise(joined, 1)
    assert summary["tokens_per_request"] == prompt_tokens(judge) + 3 + 8


def test_each_stages_handler_and_cpu_come_from_the_record_a_run_counting_with_its_last_message() -> None:
    def cost(stage: str, handler: float, cpu: float, task: str | None = None) -> dict[str, object]:
        return {"cost": {"stage": stage, "task_id": task, "handler_ms": handler, "model_ms": handler / 2,
                         "cpu_ms": cpu}}

    first = [cost("planner", 10, 4), cost("planner", 12, 5),  # the run's cost so far: its last message counts
             cost("expert-worker", 30, 2, "t1"), cost("expert-worker", 20, 1, "t2"), {"no": "cost"}]
    second = [cost("planner", 8, 3)]
    costs = token_split.stage_costs([first, second])
    assert costs == {"expert-worker": {"handler_ms": 25.0, "model_ms": 12.5, "cpu_ms": 1.5},
                     "planner": {"handler_ms": 10.0, "model_ms": 5.0, "cpu_ms": 4.0}}


def test_learning_s_calls_are_counted_apart_from_the_pipeline_s() -> None:
    def call(stage: str, prompt: int, completion: int) -> dict[str, Any]:
        return {"template": stage, "stage": stage, "prompt_tokens": prompt, "completion_tokens": completion,
                "parts": {"template": prompt, "completion": completion}}

    joined = [call("planner", 50, 20), call("merger", 40, 5), call("graph-ingest", 60, 10), call("gap-healer", 90, 9)]
    summary = summarise(joined, 2)
    assert summary["tokens_per_request"] == 142.0
    assert summary["by_stage"] == {"gap-healer": 49.5, "planner": 35.0, "graph-ingest": 35.0, "merger": 22.5}
    assert summary["without_learning_per_request"] == 57.5  # the planner's and the merger's calls only
