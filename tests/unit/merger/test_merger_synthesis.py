"""merger synthesis logic: dedup, source priority, fast path, missing, prompts, research fallback, learning."""

from __future__ import annotations

from typing import Any

import pytest

from merger import fallback, learning, synthesis
from moe_core.contracts import (
    Answer,
    FewShot,
    Plan,
    PlannedTask,
    Source,
    SynthesisInsight,
    TaskResult,
    deadline_in,
)
from moe_core.llm.modes import get_mode

pytestmark = pytest.mark.unit
ENV: dict[str, Any] = {"response_id": "r1", "tenant_id": "t"}
DEFAULT = get_mode("moe-orchestrator")


def _plan(*tasks: tuple[str, str, str], mode: str = "moe-orchestrator", seconds: float = 60, **kw: Any) -> Plan:
    planned = [PlannedTask(task_id=tid, kind=kind, category=cat, instruction=f"do {cat}")  # type: ignore[arg-type]
               for tid, kind, cat in tasks]
    return Plan(**ENV, deadline_at=deadline_in(seconds), mode=mode, question="Q?", tasks=planned, **kw)


def _res(tid: str, cat: str, content: str = "x", conf: str = "medium", kind: str = "expert", **kw: Any) -> TaskResult:
    return TaskResult(**ENV, deadline_at=deadline_in(60), task_id=tid, kind=kind, category=cat,  # type: ignore[arg-type]
                      content=content, confidence=conf, model="m", server="s", **kw)  # type: ignore[arg-type]


def _by_id(*results: TaskResult) -> dict[str, TaskResult]:
    return {r.task_id: r for r in results}


def test_dedup_keeps_the_most_confident_result_per_category_in_priority_order() -> None:
    results = [
        _res("t1", "general", "low one", "low"), _res("t2", "general", "high one", "high"),
        _res("t3", "research", "web", "medium", kind="research"), _res("t4", "precision", "42", "high", kind="tool"),
        _res("t5", "knowledge_graph", "facts", kind="graph"), _res("t6", "reasoning", "chain", "medium"),
        _res("t7", "general", "medium one", "medium"),
    ]
    kept = synthesis.dedup(results)
    assert [(r.task_id, synthesis.source_class(r)) for r in kept] == [
        ("t6", "reasoning"), ("t4", "precision tool"), ("t5", "knowledge graph"), ("t2", "expert"), ("t3", "web")]


def test_fast_path_single_high_expert_ignoring_empty_graph_and_research() -> None:
    plan = _plan(("t1", "expert", "general"), ("g1", "graph", "knowledge_graph"), ("r1", "research", "research"))
    results = _by_id(_res("t1", "general", "Paris.", "high"), _res("g1", "knowledge_graph", "", kind="graph"),
                     _res("r1", "research", "", kind="research"))
    assert synthesis.fast_path(plan, results, DEFAULT) is results["t1"]
    results["g1"] = _res("g1", "knowledge_graph", "Paris IS_A capital", kind="graph")  # found something: judge
    assert synthesis.fast_path(plan, results, DEFAULT) is None


def test_fast_path_single_high_tool_result() -> None:
    plan = _plan(("p1", "tool", "precision"), ("g1", "graph", "knowledge_graph"))
    results = _by_id(_res("p1", "precision", "17% of 2,340 = 397.8", "high", kind="tool"),
                     _res("g1", "knowledge_graph", "", kind="graph"))
    assert synthesis.fast_path(plan, results, DEFAULT) is results["p1"]


def test_no_fast_path_for_medium_confidence_a_failed_expert_or_the_report_mode() -> None:
    plan = _plan(("t1", "expert", "general"))
    assert synthesis.fast_path(plan, _by_id(_res("t1", "general", conf="medium")), DEFAULT) is None
    two = _plan(("t1", "expert", "general"), ("t2", "expert", "math"))
    failed = _by_id(_res("t1", "general", conf="high"), _res("t2", "math", "", "low", error="boom"))
    assert synthesis.fast_path(two, failed, DEFAULT) is None
    high = _by_id(_res("t1", "general", conf="high"))
    assert synthesis.fast_path(plan, high, get_mode("moe-orchestrator-report")) is None


def test_a_direct_plan_takes_its_one_answer_whatever_its_confidence() -> None:
    plan = _plan(("t1", "expert", "translation"), source="router", complexity="trivial")
    assert plan.is_direct()
    results = _by_id(_res("t1", "translation", "Chambre 101", "medium"))
    assert synthesis.fast_path(plan, results, DEFAULT) is results["t1"]
    assert synthesis.fast_path(plan, _by_id(_res("t1", "translation", "", "low", error="boom")), DEFAULT) is None
    for not_direct in (_plan(("t1", "expert", "translation"), source="llm", complexity="trivial"),
                       _plan(("t1", "expert", "translation"), source="router", complexity="moderate"),
                       _plan(("t1", "expert", "a"), ("t2", "expert", "b"), source="router", complexity="trivial")):
        assert not not_direct.is_direct()
    assert synthesis.fast_path(_plan(("t1", "expert", "translation"), source="router"), results, DEFAULT) is None


def test_two_results_of_one_category_are_one_after_dedup() -> None:
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "general"))
    results = _by_id(_res("t1", "general", "a", "high"), _res("t2", "general", "b", "low"))
    assert synthesis.fast_path(plan, results, DEFAULT) is results["t1"]


def test_missing_counts_gaps_not_empty_findings() -> None:
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "math"), ("g1", "graph", "knowledge_graph"),
                 ("r1", "research", "research"), ("rf1", "research", "research"), ("p1", "tool", "precision"))
    results = _by_id(_res("t1", "general"), _res("t2", "math", "", error="down"),
                     _res("g1", "knowledge_graph", "", kind="graph"), _res("rf1", "research", "", kind="research",
                                                                           error="search failed"))
    assert synthesis.missing(plan, results) == ["math", "research", "precision"]


def test_tool_calls_win_over_everything() -> None:
    calls = [{"id": "call_0", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]
    results = _by_id(_res("t1", "code_reviewer", "", "medium", tool_calls=calls), _res("t2", "technical_support"))
    assert synthesis.with_tool_calls(results) is results["t1"]
    assert synthesis.with_tool_calls(_by_id(_res("t2", "general"))) is None


def test_thinking_and_critic_conditions() -> None:
    one = _plan(("t1", "expert", "general"))
    assert not synthesis.needs_thinking(one, [_res("t1", "general", conf="medium")])
    assert synthesis.needs_thinking(one, [_res("t1", "general", conf="low")])
    assert synthesis.needs_thinking(_plan(("t1", "expert", "general"), ("t2", "expert", "math")), [])
    assert synthesis.critic_pending(_plan(("t1", "expert", "medical_consult")))
    assert synthesis.critic_pending(_plan(("t1", "expert", "general"), ("t2", "expert", "legal_advisor")))
    assert not synthesis.critic_pending(one)


def test_two_high_confidence_experts_alone_leave_the_thinking_step_nothing_to_weigh() -> None:
    two = _plan(("t1", "expert", "general"), ("t2", "expert", "science"), ("g1", "graph", "knowledge_graph"))
    high = [_res("t1", "general", conf="high"), _res("t2", "science", conf="high")]
    assert not synthesis.needs_thinking(two, high)  # the graph found nothing: only the two experts' parts
    assert synthesis.needs_thinking(two, high, all_high=True)  # MOE_THINKING_ALL_HIGH: the original's rule
    assert synthesis.needs_thinking(two, high, get_mode("moe-orchestrator-report"))  # a force_think mode
    assert synthesis.needs_thinking(two, [high[0], _res("t2", "science", conf="medium")])  # nuances: weigh
    assert synthesis.needs_thinking(two, [high[0]])  # an expert missing: a gap to weigh
    assert not synthesis.needs_thinking(_plan(("t1", "expert", "general")), high[:1])
    both = synthesis.judge_messages(two, high, "", DEFAULT)  # the judge still merges the two parts
    assert "Merge the sources" in both[0]["content"] and "#2 expert/science, high" in both[1]["content"]


def test_graph_facts_beside_high_confidence_experts_are_ordered_by_the_judge_not_weighed_first() -> None:
    """Graph facts outrank the experts by the judge's trust rule, which reads both whole: with every part answered
    `high` the thinking step has nothing the judge does not already settle (issue 52: 377 tokens a request at
    200-word answers). Web results and a tool's figure still make it weigh, as does an unsure expert."""
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "science"), ("g1", "graph", "knowledge_graph"),
                 ("r1", "research", "research"), ("p1", "tool", "precision"))
    high = [_res("t1", "general", conf="high"), _res("t2", "science", conf="high")]
    graph = _res("g1", "knowledge_graph", "Moon CAUSES Tide", "high", kind="graph")
    assert not synthesis.needs_thinking(plan, [*high, graph])
    assert synthesis.needs_thinking(plan, [*high, graph], all_high=True)  # MOE_THINKING_ALL_HIGH: the original's
    assert synthesis.needs_thinking(plan, [high[0], _res("t2", "science", conf="medium"), graph])
    assert synthesis.needs_thinking(plan, [*high, _res("r1", "research", "[1] news", kind="research")])
    assert synthesis.needs_thinking(plan, [*high, _res("p1", "precision", "2 + 2 = 4", kind="tool")])
    assert synthesis.needs_thinking(_plan(("g1", "graph", "knowledge_graph"), ("g2", "graph", "x")), [graph])
    judge = synthesis.judge_messages(plan, [*high, graph], "", DEFAULT)[0]["content"]
    assert "If they disagree, trust: knowledge graph > expert." in judge


def test_judge_prompt_orders_by_priority_and_asks_for_refs_and_citations() -> None:
    plan = _plan(("t1", "expert", "general"), ("g1", "graph", "knowledge_graph"), ("r1", "research", "research"),
                 mode="moe-orchestrator-report",
                 few_shot=[FewShot(question="Old Q", answer="Old A", distance=0.2)])
    good = synthesis.dedup([_res("t1", "general", "EXPERT TEXT"), _res("g1", "knowledge_graph", "GRAPH TEXT",
                                                                        kind="graph"),
                            _res("r1", "research", "WEB TEXT [1]", kind="research")])
    system, user = synthesis.judge_messages(plan, good, "compare them", get_mode(plan.mode))
    text = user["content"]
    assert text.index("GRAPH TEXT") < text.index("EXPERT TEXT") < text.index("WEB TEXT") < text.index("Old A")
    assert "Thinking so far:\ncompare them" in text
    # the trust order of the kinds of source it sees (issue 52: the others' names were prompt tokens for nothing)
    assert "trust: knowledge graph > expert > web > cache." in system["content"]
    assert "[REF:<entity>]" in system["content"] and "[n]" in system["content"]
    assert "## Summary" in system["content"]  # the report mode's instruction


def test_the_judge_is_given_no_trust_order_when_its_sources_are_of_one_kind() -> None:
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "science"))
    good = synthesis.dedup([_res("t1", "general", "ONE"), _res("t2", "science", "TWO")])
    system, _ = synthesis.judge_messages(plan, good, "", get_mode(plan.mode))
    assert "trust" not in system["content"] and "Merge the sources" in system["content"]
    with_example = plan.model_copy(update={"few_shot": [FewShot(question="Old Q", answer="Old A", distance=0.2)]})
    system, _ = synthesis.judge_messages(with_example, good, "", get_mode(plan.mode))
    assert "If they disagree, trust: expert > cache." in system["content"]
    plain_system = synthesis.judge_messages(_plan(("t1", "expert", "general")), good[1:2], "", DEFAULT)[0]
    assert "[REF:" not in plain_system["content"]


def test_the_cache_example_reaches_the_judge_only_when_an_expert_left_a_gap() -> None:
    """Issue 52: the lowest-priority source can fill a gap only; with every expert task answered high there is none
    (MOE_JUDGE_CACHE_EXAMPLE_ALWAYS shows it anyway)."""
    shot = [FewShot(question="Old Q", answer="Old A", distance=0.2)]
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "science"), few_shot=shot)
    sure = synthesis.dedup([_res("t1", "general", "ONE", "high"), _res("t2", "science", "TWO", "high")])
    system, user = synthesis.judge_messages(plan, sure, "", DEFAULT)
    assert "Old A" not in user["content"] and "cache" not in system["content"]
    system, user = synthesis.judge_messages(plan, sure, "", DEFAULT, cache_always=True)
    assert "Old A" in user["content"] and "trust: expert > cache." in system["content"]
    unsure = [sure[0], _res("t2", "science", "TWO", "medium")]
    assert "Old A" in synthesis.judge_messages(plan, unsure, "", DEFAULT)[1]["content"]
    failed = sure[:1]  # t2 came back with an error: not among the usable results
    assert "Old A" in synthesis.judge_messages(plan, failed, "", DEFAULT)[1]["content"]


def test_sources_of_the_used_results() -> None:
    web = [Source(kind="web", ref="web:1", title="Tide", url="https://t.example")]
    good = [_res("t1", "general"), _res("r1", "research", kind="research", sources=web),
            _res("p1", "precision", kind="tool"), _res("g1", "knowledge_graph", kind="graph",
                                                       sources=[Source(kind="graph", ref="rel-1")])]
    assert [(s.kind, s.ref) for s in synthesis.result_sources(good)] == [
        ("expert", "general:m@s"), ("web", "web:1"), ("tool", "precision")]


def test_render_plan() -> None:
    plan = _plan(("r1", "research", "research"), ("t1", "expert", "general"))
    assert synthesis.render_plan(plan) == "Plan:\n1. [research] research: do research\n2. [expert] general: do general"


def test_research_fallback_for_low_confidence_experts_only_once_and_in_time() -> None:
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "math"))
    results = _by_id(_res("t1", "general", conf="low"), _res("t2", "math", conf="high"))
    task = fallback.fallback_task(plan, results, True, 5)
    assert task is not None and (task.task_id, task.kind, task.args) == ("rf1", "research", {"queries": ["do general"]})
    message = fallback.research_message(plan, task)
    assert (message.queries, message.category, message.question) == (["do general"], "research", "Q?")
    assert fallback.fallback_task(plan, results, False, 5) is None  # disabled
    assert fallback.fallback_task(_plan(("t1", "expert", "general"), seconds=3), results, True, 5) is None
    with_research = _plan(("t1", "expert", "general"), ("r1", "research", "research"))
    assert fallback.fallback_task(with_research, results, True, 5) is None
    confident = _by_id(_res("t1", "general", conf="medium"))
    assert fallback.fallback_task(plan, confident, True, 5) is None


def test_learning_events() -> None:
    answer = Answer(**ENV, deadline_at=deadline_in(9), mode="moe-orchestrator", content="Use aspirin.",
                    question="Headache?", reasoning="Both agree.")
    lead = _res("t1", "medical_consult", conf="high")
    insight = SynthesisInsight(summary="Aspirin and rest together.", entities=["Aspirin"], insight_type="causal")
    event = learning.ingest_event(answer, lead, used=2, insight=insight)
    assert event is not None
    assert (event.question, event.answer, event.knowledge_type, event.source_expert, event.source_model,
            event.confidence, event.synthesis_insight, event.synthesis, event.cache_hit) == (
        "Headache?", "Use aspirin.", "medical", "medical_consult", "m", "high", "Aspirin and rest together.",
        insight, False)
    assert learning.ingest_event(answer, lead, used=1, insight=insight).synthesis is None  # type: ignore[union-attr]
    without = learning.ingest_event(answer, lead, used=2)  # no block: the thinking trace is no insight
    assert without is not None and (without.synthesis, without.synthesis_insight) == (None, None)
    tool = learning.ingest_event(answer, _res("p1", "precision", kind="tool", conf="high"), used=1)
    assert tool is not None and tool.knowledge_type == "precision"
    assert learning.ingest_event(answer.model_copy(update={"finish_reason": "deadline"}), lead, 1) is None


@pytest.mark.parametrize("mode", ["moe-orchestrator-agent-orchestrated", "moe-orchestrator-research",
                                  "moe-orchestrator-report", "moe-orchestrator-plan"])
def test_the_modes_that_force_the_thinking_step_in_the_original_do(mode: str) -> None:
    plan = _plan(("t1", "expert", "general"), mode=mode)
    high = _by_id(_res("t1", "general", "Paris.", "high"))
    assert synthesis.needs_thinking(plan, list(high.values()), get_mode(mode))
    assert synthesis.fast_path(plan, high, get_mode(mode)) is None  # the trace must reach the judge
    assert not synthesis.needs_thinking(plan, list(high.values()), DEFAULT)
    assert synthesis.fast_path(plan, high, DEFAULT) is high["t1"]
