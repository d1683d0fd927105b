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
from moe_core.contracts import ExpertTask, Feedback, ModelUse, deadline_in
from moe_core.inference import InferenceClient, InferenceConfig, InferenceServer, ModelRef
from moe_core.settings import FleetSettings
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
