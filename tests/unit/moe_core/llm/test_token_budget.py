"""A request's token budget (moe_core.llm.token_budget) against the real Redis and a real HTTP inference server
(the scripted one): concurrent model calls of one request never use more than its budget together; each call's
max_tokens is cut to what is left; a call without room is refused (InferenceError "budget") and the budget is
marked exhausted; what a call did not use comes back; calls outside a budgeted request are not touched."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceError, InferenceServer, ModelRef
from moe_core.llm.token_budget import TokenBudgets, prompt_bound
from moe_core.runtime.observability import bind_response_id
from moe_core.runtime.stores import redis_client
from tests.support.scripted_llm import create_app, start_server_thread

pytestmark = pytest.mark.unit
MODEL = "budget-model"
REPLY = " ".join(f"w{i}" for i in range(40))  # 40 tokens unless max_tokens cuts it
MESSAGES = [{"role": "user", "content": "how many tokens"}]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    url, stop = start_server_thread(app=create_app({"models": [MODEL], "rules": [], "default_reply": REPLY}))
    yield url
    stop()


@pytest.fixture
async def client(infra: dict[str, str], namespace: str,
                 url: str) -> AsyncIterator[tuple[InferenceClient, TokenBudgets]]:
    redis = redis_client(infra["redis"])
    budgets = TokenBudgets(redis, namespace)
    config = InferenceConfig(servers=[InferenceServer(name="s", url=url, max_retries=0)],
                             roles={"default": [ModelRef(model=MODEL)]})
    inference = InferenceClient(config, budgets=budgets)
    yield inference, budgets
    await inference.aclose()
    await redis.aclose()


@pytest.mark.infra  # real stores
async def test_concurrent_calls_never_use_more_than_the_budget(client: tuple[InferenceClient, TokenBudgets]) -> None:
    inference, budgets = client
    rid = uuid.uuid4().hex
    bound = prompt_bound(MESSAGES)
    budget = 3 * (bound + 40) + bound + 10  # three whole calls fit at once, a fourth only with 10 tokens
    await budgets.open(rid, budget, 60)

    async def one(stream: bool) -> int:
        with bind_response_id(rid):
            if stream:
                deltas = [d async for d in inference.stream([ModelRef(model=MODEL)], MESSAGES, max_tokens=40)]
                return deltas[-1].usage.total_tokens if deltas[-1].usage else 0
            return (await inference.chat([ModelRef(model=MODEL)], MESSAGES, max_tokens=40)).usage.total_tokens

    results = await asyncio.gather(*(one(i % 2 == 1) for i in range(12)), return_exceptions=True)
    used = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, InferenceError)]
    assert len(used) + len(refused) == 12 and refused and all(r.kind == "budget" for r in refused)
    assert sum(used) <= budget
    assert await budgets.left(rid) == budget - sum(used)  # every call gave back what it did not use
    assert await budgets.exhausted(rid)


@pytest.mark.infra  # real stores
async def test_max_tokens_is_cut_to_what_is_left(client: tuple[InferenceClient, TokenBudgets]) -> None:
    inference, budgets = client
    rid = uuid.uuid4().hex
    await budgets.open(rid, prompt_bound(MESSAGES) + 7, 60)
    with bind_response_id(rid):
        completion = await inference.chat([ModelRef(model=MODEL)], MESSAGES)  # no max_tokens: what is left
        assert completion.usage.completion_tokens == 7 and completion.finish_reason == "length"
        with pytest.raises(InferenceError) as refused:
            await inference.chat([ModelRef(model=MODEL)], MESSAGES, max_tokens=1)
    assert refused.value.kind == "budget" and not refused.value.retryable
    assert await budgets.close(rid) == prompt_bound(MESSAGES) + 7 - completion.usage.total_tokens
    assert await budgets.left(rid) == 0


@pytest.mark.infra  # real stores
async def test_a_call_outside_a_budgeted_request_is_not_limited(client: tuple[InferenceClient, TokenBudgets]) -> None:
    inference, _ = client
    completion = await inference.chat([ModelRef(model=MODEL)], MESSAGES)  # no response_id bound
    assert completion.usage.completion_tokens == 40
    with bind_response_id(uuid.uuid4().hex):  # a request that has no budget (not metered)
        assert (await inference.chat([ModelRef(model=MODEL)], MESSAGES)).usage.completion_tokens == 40


def test_only_the_stages_that_answer_a_request_spend_its_budget() -> None:
    from moe_core.runtime.settings import FleetSettings
    from moe_core.stage.registry import stages

    spending = {s.name for s in stages() if "inference" in s.needs and s.request_budget}
    assert spending == {"planner", "expert-worker", "merger", "research", "critic"}  # their usage is the Answer's
    redis = redis_client("redis://127.0.0.1:1/0")  # never contacted
    assert InferenceClient.from_settings(FleetSettings(), redis, budgets=False).budgets is None
    assert InferenceClient.from_settings(FleetSettings(), redis).budgets is not None
