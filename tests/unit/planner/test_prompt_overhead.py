"""Each prompt token paid once per request (issue 13): the semantic cache's examples reach the judge, not
every expert (only a lone expert, which may end on the fast path without a judge, gets them) nor the
thinking step, and the judge sees the nearest one only; the planner model sees the categories by name and
is offered research tasks only for a question that may need current facts; the fixed instruction text of
each call stays within a bound (words, the scripted server's token rule)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from expert_worker.core import expert_messages
from merger import insight, synthesis
from moe_core.contracts import (
    EXPERT_CATEGORIES,
    ChatMessage,
    ChatRequest,
    ExpertTask,
    FewShot,
    Plan,
    PlannedTask,
    TaskResult,
    deadline_in,
)
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.llm.modes import get_mode
from moe_core.runtime.bus import Bus
from planner import core, research_tasks
from planner.app import create_app, task_message
from planner.settings import PlannerSettings
from tests.support.scripted_llm import create_app as scripted_app

F: dict[str, Any] = {"response_id": "r", "tenant_id": "t", "deadline_at": deadline_in(60), "mode": "moe-orchestrator"}
QUESTION = "Compare a violin and a telescope as they were in 1700: explain their history in detail."
SHOTS = [FewShot(question="Compare a cello and a sundial in 1650?", answer="CACHED ANSWER", distance=0.3)]


pytestmark = pytest.mark.unit


def _plan(*categories: str) -> Plan:
    tasks = [PlannedTask(task_id=f"t{i}", category=c, instruction=f"do {c}") for i, c in enumerate(categories, 1)]
    tasks.append(PlannedTask(task_id="g1", kind="graph", category="knowledge_graph", instruction="graph"))
    return Plan(**F, question=QUESTION, tasks=tasks, few_shot=SHOTS)


def _expert_tasks(plan: Plan) -> list[ExpertTask]:
    request = ChatRequest(**F, messages=[ChatMessage(role="user", content=QUESTION)])
    tasks = [task_message(request, plan, t, []) for t in plan.tasks if t.kind == "expert"]
    return [t for t in tasks if isinstance(t, ExpertTask)]


def test_the_examples_go_to_the_judge_once_not_to_every_expert() -> None:
    plan = _plan("general", "science")
    assert [t.few_shot for t in _expert_tasks(plan)] == [[], []]
    results = [TaskResult(**F, task_id=f"t{i}", category=c, content=f"{c} text") for i, c in
               enumerate(("general", "science"), 1)]
    judge = synthesis.judge_messages(plan, results, "notes", get_mode(plan.mode))[1]["content"]
    assert judge.count("CACHED ANSWER") == 1 and judge.count(QUESTION) == 1
    thinking = " ".join(m["content"] for m in synthesis.thinking_messages(plan, results))
    assert "CACHED ANSWER" not in thinking and thinking.count(QUESTION) == 1
    assert "general text" in thinking and "science text" in thinking


def test_a_lone_expert_keeps_the_examples() -> None:
    [task] = _expert_tasks(_plan("general"))
    assert task.few_shot == SHOTS  # a confident lone expert is the answer: no judge sees them otherwise


def test_the_planner_sees_the_categories_by_name() -> None:
    system = core.planner_messages(QUESTION, list(EXPERT_CATEGORIES), 4)[0]["content"]
    assert all(system.count(name) >= 1 for name in EXPERT_CATEGORIES)
    assert not any(description in system for description in EXPERT_CATEGORIES.values())


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m["content"]).split()) for m in messages)


def _results() -> list[TaskResult]:
    return [TaskResult(**F, task_id=f"t{i}", category=c, confidence="high", content=f"{c} text")
            for i, c in enumerate(("general", "science"), 1)]


def test_the_judge_sees_the_nearest_example_only_and_a_long_answer_cut() -> None:
    far = FewShot(question="Compare a cello and a sundial in 1650?", answer="FAR ANSWER", distance=0.3)
    near = FewShot(question="Compare a violin and a lens in 1690?", answer="NEAR " * 400, distance=0.2)
    plan = _plan("general", "science").model_copy(update={"few_shot": [far, near]})
    judge = synthesis.judge_messages(plan, _results(), "notes", get_mode(plan.mode), cache_always=True)[1]["content"]
    assert "FAR ANSWER" not in judge and judge.count("Compare a violin and a lens in 1690?") == 1
    example = judge.split("A: ", 1)[1]
    assert example.startswith("NEAR NEAR") and example.endswith("[...]")
    assert len(example) <= synthesis.CACHE_EXAMPLE_CHARS + len(" [...]")


def test_the_sources_are_listed_most_trusted_first_as_the_thinking_step_is_told() -> None:
    graph = TaskResult(**F, task_id="g1", kind="graph", category="knowledge_graph", content="GRAPH TEXT")
    low = TaskResult(**F, task_id="t3", category="math", confidence="low", content="LOW TEXT")
    system, user = synthesis.thinking_messages(_plan("general"), [low, *_results(), graph])
    assert "most trusted first" in system["content"]
    text = user["content"]
    assert text.index("GRAPH TEXT") < text.index("general text") < text.index("LOW TEXT")


def test_each_call_s_own_instruction_text_is_bounded() -> None:
    """What a call carries besides the question, the plan's instruction, the sources and the examples (words,
    before issue 13's second pass -> issue 52 -> now): the planner 52 -> 46 -> 34 (no tools, no research), an
    expert's system prompt 54-61 -> 46-55 -> 24-32 (the original's three protocol fields), the thinking step's
    34 -> 24, the judge's 39 -> 33 -> 13 (a plain request: no tool, no web, no mode rule; plus the
    knowledge-graph rule when there is a graph result, and issue 28's insight rule, 9 -> 7 words, when it merges
    two or more results and MOE_JUDGE_INSIGHT is on)."""
    plan = _plan("general", "science")
    planner = core.planner_messages(QUESTION, list(EXPERT_CATEGORIES), 4)
    assert _words(planner) - len(QUESTION.split()) <= 34
    for category in EXPERT_CATEGORIES:  # every category's role plus the protocol, without examples
        task = _expert_tasks(_plan(category))[0].model_copy(update={"few_shot": []})
        assert _words(expert_messages(task)[:1]) <= 32, category
    assert _words(synthesis.thinking_messages(plan, _results())[:1]) <= 24
    plain = plan.model_copy(update={"few_shot": []})
    assert _words(synthesis.judge_messages(plain, _results(), "", get_mode(None), False)[:1]) <= 13
    merged = synthesis.judge_messages(plain, _results(), "", get_mode(None))[0]["content"]  # two results
    assert insight.RULE in merged and len(merged.split()) <= 13 + len(insight.RULE.split()) <= 13 + 7
    alone = synthesis.judge_messages(plain, _results()[:1], "", get_mode(None))[0]["content"]
    assert insight.RULE not in alone and len(alone.split()) <= 13
    graph = TaskResult(**F, task_id="g1", kind="graph", category="knowledge_graph", content="G")
    ref_rule = "After each knowledge-graph fact write [REF:<entity>] naming its entity."
    judge = synthesis.judge_messages(plain, [*_results(), graph], "", get_mode(None), False)[0]["content"]
    assert ref_rule in judge and len(judge.split()) <= 13 + 8 + len(ref_rule.split())  # + the trust order


CURRENT = "What changed in the latest Kafka release?"


def test_research_is_offered_only_for_a_question_that_may_need_current_facts() -> None:
    settings = PlannerSettings()
    assert not research_tasks.offered(QUESTION, settings)  # 1700: history, no web search to offer
    for question in (CURRENT, "Who is the CEO of Siemens?", "What does a litre of diesel cost in Lyon?",
                     "Summarise this week's headlines", "Is the Rhine ferry at Kaub still open?"):
        assert research_tasks.offered(question, settings), question
        assert research_tasks.may_need_current_facts(question)
    assert not research_tasks.offered(CURRENT, PlannerSettings(planner_research_tasks=False))
    for question in ("What is the capital of France?", "Explain how a violin makes sound.",
                     "Compare a violin and quartz as they were in the year 1003."):
        assert not research_tasks.may_need_current_facts(question), question


@pytest.mark.infra  # real stores
async def test_the_planner_model_sees_the_research_instruction_only_where_it_may_help(redis: Any,
                                                                                       namespace: str) -> None:
    llm = scripted_app({"models": ["p"], "rules": [
        {"reply": json.dumps({"tasks": [{"category": "general", "instruction": "Answer it"}]})}]})
    settings = PlannerSettings(topic_namespace=namespace, semantic_cache_enabled=False, router_enabled=False,
                               plan_cache_enabled=False, planner_skip_trivial=False, planner_graph_tasks=False,
                               inference_servers='[{"name":"s","url":"http://s","models":["p"]}]')
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, manage_broker=False)
    async with TestKafkaBroker(bus.broker):
        for i, question in enumerate((QUESTION, CURRENT)):
            request = ChatRequest(**{**F, "response_id": f"r{i}-{namespace}"},
                                  messages=[ChatMessage(role="user", content=question)])
            await bus.publish(request, bus.topics.requests)
    history, current = llm.state.scripted.get_calls()
    assert research_tasks.PROMPT not in history["messages"][0]["content"]
    kinds = history["body"]["response_format"]["json_schema"]["schema"]["properties"]["tasks"]["items"]["properties"]
    assert "query" not in kinds and "research" not in json.dumps(kinds)
    assert research_tasks.PROMPT in current["messages"][0]["content"]
