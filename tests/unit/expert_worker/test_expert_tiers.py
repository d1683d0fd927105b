"""Two-tier experts and feedback skipping on a scripted inference server (in-process), scores in real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from expert_worker.scoring import ScoreBoard
from expert_worker.tiers import TieredExpert, groups, split_tiers
from moe_core.contracts import ExpertTask, Feedback, GenerationParams, ModelUse, deadline_in
from moe_core.llm import tool_choice
from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceServer, ModelRef
from moe_core.llm.inference.servers import parameters_b, tier_of
from moe_core.runtime.settings import FleetSettings
from tests.support.scripted_llm import create_app

pytestmark = pytest.mark.unit
MODELS = ["small-a", "small-b", "big"]
TEMPLATES = {"math": ["small-a", "small-b", {"model": "big", "tier": 2}]}


def test_template_entries_with_tiers_and_endpoints() -> None:
    settings = FleetSettings(
        inference_servers=json.dumps([{"name": "s1", "url": "http://s1"}, {"name": "s2", "url": "http://s2"}]),
        expert_templates=json.dumps({"math": ["a@s1", {"model": "b"}, {"model": "c", "endpoint": "s2", "tier": 2}]}))
    refs = InferenceConfig.from_settings(settings).for_expert("math")
    assert [(r.model, r.server, r.tier) for r in refs] == [("a", "s1", 1), ("b", None, 1), ("c", "s2", 2)]
    assert [[r.model for r in t] for t in split_tiers(refs)] == [["a", "b"], ["c"]]
    assert [[r.model for r in g] for g in groups(refs[:2], 1)] == [["a", "b"]]  # one call, b is a's failover
    assert [[r.model for r in g] for g in groups(refs, 2)] == [["a"], ["b", "c"]]
    only_big = [ModelRef(model="big", tier=2)]
    assert split_tiers(only_big) == [only_big]


@pytest.fixture
async def llm() -> AsyncIterator[Any]:
    yield create_app({"models": MODELS, "rules": []})


def _expert(llm: Any, scores: ScoreBoard | None = None, parallel: int = 1) -> TieredExpert:
    config = InferenceConfig(servers=[InferenceServer(name="s", url="http://s", max_retries=0)],
                             roles={"default": [ModelRef(model="small-a")]},
                             experts={"math": [ModelRef.of(e) for e in TEMPLATES["math"]]})
    client = InferenceClient(config, httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    return TieredExpert(client, scores, max_tokens=100, max_output_chars=1000, parallel=parallel)


def _task() -> ExpertTask:
    return ExpertTask(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                      category="math", instruction="2+2?", question="2+2?")


def _script(llm: Any, replies: dict[str, str], status: dict[str, int] | None = None) -> None:
    rules = [{"model": m, "reply": r, **({"status": status[m]} if status and m in status else {})}
             for m, r in replies.items()]
    llm.state.scripted.set_script({"models": MODELS, "rules": rules})
    llm.state.scripted.clear_calls()


def _called(llm: Any) -> list[str]:
    return [c["model"] for c in llm.state.scripted.get_calls()]


MESSAGES = [{"role": "user", "content": "2+2?"}]


async def test_a_confident_tier_one_answer_never_calls_tier_two(llm: Any) -> None:
    _script(llm, {"small-a": "CORE_FINDING: 4\nCONFIDENCE: high", "big": "CORE_FINDING: four\nCONFIDENCE: high"})
    result = await _expert(llm).run(_task(), MESSAGES)
    assert (result.content, result.confidence, result.model) == ("4", "high", "small-a")
    assert _called(llm) == ["small-a"]
    assert result.data is not None and result.data["attempts"] == [
        {"tier": 1, "model": "small-a", "server": "s", "confidence": "high"}]


async def test_tier_two_runs_when_tier_one_is_not_high_and_the_usage_adds_up(llm: Any) -> None:
    _script(llm, {"small-a": "CORE_FINDING: maybe 5\nCONFIDENCE: low", "big": "CORE_FINDING: 4\nCONFIDENCE: high"})
    result = await _expert(llm).run(_task(), MESSAGES)
    assert (result.content, result.confidence, result.model) == ("4", "high", "big")
    assert _called(llm) == ["small-a", "big"]
    calls = llm.state.scripted.get_calls()
    assert result.usage.completion_tokens == sum(len(c["reply"].split()) for c in calls)
    # on a tie the higher tier wins; a failed tier one also escalates
    _script(llm, {"small-a": "CORE_FINDING: 4\nCONFIDENCE: medium", "big": "CORE_FINDING: four\nCONFIDENCE: medium"})
    assert (await _expert(llm).run(_task(), MESSAGES)).model == "big"
    _script(llm, {"small-a": "x", "small-b": "x", "big": "CORE_FINDING: 4\nCONFIDENCE: medium"},
            status={"small-a": 500, "small-b": 500})
    result = await _expert(llm).run(_task(), MESSAGES)
    assert (result.model, result.error) == ("big", None)
    assert _called(llm) == ["small-a", "small-b", "big"]  # small-b is small-a's failover in tier one


async def test_parallel_tier_one_keeps_the_most_confident(llm: Any) -> None:
    _script(llm, {"small-a": "CORE_FINDING: 5\nCONFIDENCE: low", "small-b": "CORE_FINDING: 4\nCONFIDENCE: high"})
    result = await _expert(llm, parallel=2).run(_task(), MESSAGES)
    assert (result.content, result.model) == ("4", "small-b")
    assert sorted(_called(llm)) == ["small-a", "small-b"]


async def test_every_model_failing_is_an_error_result(llm: Any) -> None:
    _script(llm, {m: "x" for m in MODELS}, status=dict.fromkeys(MODELS, 503))
    result = await _expert(llm).run(_task(), MESSAGES)
    assert result.error and result.confidence == "low" and result.model is None


@pytest.mark.infra  # real stores
async def test_a_model_with_bad_feedback_is_skipped_for_its_category(llm: Any, redis: Redis, namespace: str) -> None:
    scores = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=0)
    _script(llm, {"small-a": "CORE_FINDING: a\nCONFIDENCE: high", "small-b": "CORE_FINDING: b\nCONFIDENCE: high"})
    assert (await _expert(llm, scores).run(_task(), MESSAGES)).model == "small-a"
    for i in range(3):
        await scores.record(Feedback(response_id=f"{namespace}-{i}", tenant_id="t", deadline_at=deadline_in(9),
                                     rating=1, models_used=[ModelUse(model="small-a", category="math")]))
    _script(llm, {"small-a": "CORE_FINDING: a\nCONFIDENCE: high", "small-b": "CORE_FINDING: b\nCONFIDENCE: high"})
    assert (await _expert(llm, scores).run(_task(), MESSAGES)).model == "small-b"
    assert "small-a" not in _called(llm)


async def test_a_direct_task_stops_at_the_first_tier_that_answers(llm: Any) -> None:
    """A trivial question's plain answer carries no CONFIDENCE tag (medium): it must not wake tier two."""
    _script(llm, {"small-a": "4", "big": "CORE_FINDING: four\nCONFIDENCE: high"})
    result = await _expert(llm).run(_task().model_copy(update={"direct": True}), MESSAGES)
    assert (result.content, result.confidence, result.model) == ("4", "medium", "small-a")
    assert _called(llm) == ["small-a"]
    _script(llm, {"small-a": "x", "small-b": "x", "big": "4"}, status={"small-a": 500, "small-b": 500})
    result = await _expert(llm).run(_task().model_copy(update={"direct": True}), MESSAGES)
    assert (result.content, result.model) == ("4", "big")  # a tier that failed outright still escalates


async def test_an_answer_cut_at_max_tokens_is_a_length_result(llm: Any) -> None:
    _script(llm, {"small-a": "four is the sum of two and two", "big": "four"})
    task = _task().model_copy(update={"direct": True, "params": GenerationParams(max_tokens=2)})
    result = await _expert(llm).run(task, MESSAGES)
    assert (result.content, result.finish_reason) == ("four is", "length")
    whole = await _expert(llm).run(_task().model_copy(update={"direct": True}), MESSAGES)
    assert whole.finish_reason == "stop"


@pytest.mark.parametrize("model, size, tier", [
    ("phi4:14b", 14, 1), ("qwq:32b", 32, 2), ("gpt-oss:20b", 20, 1), ("qwen2.5-72b-instruct", 72, 2),
    ("Llama-3.1-8B-Instruct", 8, 1), ("smollm2-135m", 0.135, 1), ("mixtral:8x7b", 56, 2), ("qwen3-30b-a3b", 30, 2),
    ("expert-model", None, 1), ("phi-3-mini", None, 1),
])
def test_a_models_tier_follows_its_size_as_in_the_original(model: str, size: float | None, tier: int) -> None:
    assert parameters_b(model) == (pytest.approx(size) if size is not None else None)
    assert tier_of(model, 20) == tier


def test_tiers_come_from_the_size_unless_an_entry_states_one() -> None:
    settings = FleetSettings(
        inference_servers=json.dumps([{"name": "s", "url": "http://s"}]),
        expert_templates=json.dumps({"math": ["phi4:14b", "qwq:32b", {"model": "llama3.3:70b", "tier": 1},
                                              {"model": "gemma3:4b", "tier": 2}]}))
    refs = InferenceConfig.from_settings(settings).for_expert("math")
    assert [(r.model, r.tier) for r in refs] == [("phi4:14b", 1), ("qwq:32b", 2), ("llama3.3:70b", 1),
                                                 ("gemma3:4b", 2)]
    wider = FleetSettings(inference_servers=settings.inference_servers, expert_templates=settings.expert_templates,
                          expert_tier_boundary_b=40)  # EXPERT_TIER_BOUNDARY_B
    assert [r.tier for r in InferenceConfig.from_settings(wider).for_expert("math")] == [1, 1, 1, 2]


SIZED = ["phi4:14b", "qwq:32b"]


def _sized_expert(llm: Any, **settings: Any) -> TieredExpert:
    """A fleet configured like the original: EXPERT_TEMPLATES names a small and a large model, no tiers."""
    fleet = FleetSettings(inference_servers=json.dumps([{"name": "s", "url": "http://s", "max_retries": 0}]),
                          expert_templates=json.dumps({"math": SIZED}))
    client = InferenceClient(InferenceConfig.from_settings(fleet),
                             httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    return TieredExpert(client, None, max_tokens=100, max_output_chars=1000, parallel=1, **settings)


async def test_a_fleet_with_a_tier_one_and_a_tier_two_model_escalates_on_a_low_confidence_answer(llm: Any) -> None:
    llm.state.scripted.set_script({"models": SIZED, "rules": [
        {"model": "phi4:14b", "reply": "CORE_FINDING: maybe 5\nCONFIDENCE: low"},
        {"model": "qwq:32b", "reply": "CORE_FINDING: 4\nCONFIDENCE: high"}]})
    llm.state.scripted.clear_calls()
    result = await _sized_expert(llm).run(_task(), MESSAGES)
    assert (result.content, result.confidence, result.model) == ("4", "high", "qwq:32b")
    assert _called(llm) == ["phi4:14b", "qwq:32b"]  # the small one first, the large one after it
    assert [a["tier"] for a in result.data["attempts"]] == [1, 2]  # type: ignore[index]

    llm.state.scripted.set_script({"models": SIZED, "rules": [
        {"model": "phi4:14b", "reply": "CORE_FINDING: 4\nCONFIDENCE: high"},
        {"model": "qwq:32b", "reply": "CORE_FINDING: four\nCONFIDENCE: high"}]})
    llm.state.scripted.clear_calls()
    assert (await _sized_expert(llm).run(_task(), MESSAGES)).model == "phi4:14b"
    assert _called(llm) == ["phi4:14b"]  # confident: tier two never runs


async def test_a_forced_ensemble_asks_both_tiers_at_once(llm: Any) -> None:
    llm.state.scripted.set_script({"models": SIZED, "rules": [
        {"model": "phi4:14b", "reply": "CORE_FINDING: 4\nCONFIDENCE: high"},
        {"model": "qwq:32b", "reply": "CORE_FINDING: four\nCONFIDENCE: high"}]})
    llm.state.scripted.clear_calls()
    result = await _sized_expert(llm, ensemble=True).run(_task(), MESSAGES)
    assert sorted(_called(llm)) == ["phi4:14b", "qwq:32b"]  # both, though tier one was confident
    assert result.model == "qwq:32b"  # equally confident: the higher tier
    llm.state.scripted.clear_calls()
    direct = await _sized_expert(llm, ensemble=True).run(_task().model_copy(update={"direct": True}), MESSAGES)
    assert _called(llm) == ["phi4:14b"] and direct.model == "phi4:14b"  # a trivial question: one plain call


async def test_a_named_template_can_force_the_ensemble_and_its_tiers_follow_the_size(llm: Any) -> None:
    fleet = FleetSettings(
        inference_servers=json.dumps([{"name": "s", "url": "http://s", "models": SIZED, "max_retries": 0}]),
        named_templates="version: 1\ntemplates:\n  both:\n    ensemble: true\n    experts:\n"
                        "      math: [phi4:14b, qwq:32b]\n")
    config = InferenceConfig.from_settings(fleet)
    assert [(r.model, r.tier) for r in config.for_expert("math", "both")] == [("phi4:14b", 1), ("qwq:32b", 2)]
    llm.state.scripted.set_script({"models": SIZED, "rules": [
        {"model": "phi4:14b", "reply": "CORE_FINDING: 4\nCONFIDENCE: high"},
        {"model": "qwq:32b", "reply": "CORE_FINDING: four\nCONFIDENCE: medium"}]})
    llm.state.scripted.clear_calls()
    client = InferenceClient(config, httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    expert = TieredExpert(client, None, max_tokens=100, max_output_chars=1000, parallel=1)
    result = await expert.run(_task().model_copy(update={"template": "both"}), MESSAGES)
    assert sorted(_called(llm)) == ["phi4:14b", "qwq:32b"] and result.model == "phi4:14b"  # the more confident
    llm.state.scripted.clear_calls()
    await expert.run(_task(), MESSAGES)  # without the template: no ensemble (the default role: phi4:14b@s)
    assert _called(llm) == ["phi4:14b"]


TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}},
         {"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}}]


def _tool_task(choice: str | dict[str, Any]) -> ExpertTask:
    return _task().model_copy(update={"tools": TOOLS, "tool_choice": choice, "direct": True})


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "lookup"}}])
async def test_a_forced_tool_choice_is_never_met_with_text(llm: Any, choice: str | dict[str, Any]) -> None:
    """The client demanded a tool call: tier 1's text does not end the task (tier 2 may call the tool), and when no
    model calls it the task fails, saying so, instead of passing text off as the answer."""
    _script(llm, {"small-a": "CORE_FINDING: it is sunny\nCONFIDENCE: high", "big": "CORE_FINDING: sunny"})
    result = await _expert(llm).run(_tool_task(choice), MESSAGES)
    assert _called(llm) == ["small-a", "big"]
    assert result.error is not None and result.error.startswith(tool_choice.UNMET) and not result.tool_calls
    llm.state.scripted.set_script({"models": MODELS, "rules": [
        {"model": "small-a", "reply": "CORE_FINDING: sunny\nCONFIDENCE: high"},
        {"model": "big", "tool_calls": [{"name": "lookup", "arguments": {"city": "Oslo"}}]}]})
    result = await _expert(llm).run(_tool_task(choice), MESSAGES)
    assert result.error is None and [c["function"]["name"] for c in result.tool_calls or []] == ["lookup"]


async def test_a_named_tool_choice_is_not_met_by_another_function(llm: Any) -> None:
    llm.state.scripted.set_script({"models": MODELS, "rules": [
        {"tool_calls": [{"name": "other", "arguments": {}}]}]})
    result = await _expert(llm).run(_tool_task({"type": "function", "function": {"name": "lookup"}}), MESSAGES)
    assert result.error is not None and "the function 'lookup'" in result.error
    result = await _expert(llm).run(_tool_task("auto"), MESSAGES)  # nothing forced: any call (or text) answers
    assert result.error is None and [c["function"]["name"] for c in result.tool_calls or []] == ["other"]


def test_what_a_tool_choice_forces() -> None:
    assert [tool_choice.forced_tool(c) for c in (None, "auto", "none", "required")] == [False, False, False, True]
    assert tool_choice.forced_tool({"type": "function", "function": {"name": "lookup"}}) == "lookup"
