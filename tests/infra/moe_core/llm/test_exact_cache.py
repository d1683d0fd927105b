"""Exact repeats in real Redis: what the planner writes next to its semantic-cache entry and the gateway
reads before it publishes a request."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from moe_core.contracts import ChatMessage, ChatRequest, ModelUse, deadline_in
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, cache_scope

pytestmark = pytest.mark.infra


def _request(*messages: tuple[str, str], tenant: str = "t1", mode: str = "moe-orchestrator",
             tools: list[dict[str, object]] | None = None) -> ChatRequest:
    return ChatRequest(response_id="new-rid", tenant_id=tenant, deadline_at=deadline_in(30), mode=mode,
                       messages=[ChatMessage(role=r, content=c) for r, c in messages], tools=tools or [])


async def test_an_exact_repeat_is_answered_and_nothing_else_is(redis: Redis, namespace: str) -> None:
    exact = ExactAnswers(redis, namespace, ttl_s=60)
    first = _request(("user", "What's the capital of France?"))
    scope = cache_scope(first)
    assert scope is not None
    await exact.put(scope, ExactEntry(cache_key="entry-1", question="What's the capital of France?",
                                      answer="Paris.", experts_used=["general"],
                                      models_used=[ModelUse(model="m", category="general")]))
    assert 0 < await redis.ttl(exact.key(scope, "What's the capital of France?")) <= 60

    # the same words after normalisation (case, contraction, spacing, outer punctuation)
    answer = await exact.answer(_request(("user", "  what is the capital of france ")))
    assert answer is not None
    assert (answer.response_id, answer.content, answer.cache_hit, answer.cache_key) == ("new-rid", "Paris.", True,
                                                                                          "entry-1")
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.model_calls) == (0, 0, 0)
    assert answer.sources[0].kind == "cache" and answer.models_used[0].model == "m"

    # other words, another tenant, mode or system prompt, a conversation or tools: not an exact repeat
    for other in (_request(("user", "What's France's capital city?")),
                  _request(("user", "What's the capital of France?"), tenant="t2"),
                  _request(("user", "What's the capital of France?"), mode="moe-orchestrator-concise"),
                  _request(("system", "Answer in German."), ("user", "What's the capital of France?")),
                  _request(("user", "hi"), ("assistant", "hello"), ("user", "What's the capital of France?")),
                  _request(("user", "What's the capital of France?"), tools=[{"type": "function"}])):
        assert await exact.answer(other) is None

    await exact.drop(scope, "what is the capital of france")  # a flagged entry is gone for the gateway
    assert await exact.answer(first) is None


async def test_a_damaged_entry_is_a_miss(redis: Redis, namespace: str) -> None:
    exact = ExactAnswers(redis, namespace, ttl_s=60)
    request = _request(("user", "ping"))
    await redis.set(exact.key(cache_scope(request) or "", "ping"), "{not json")
    assert await exact.answer(request) is None
