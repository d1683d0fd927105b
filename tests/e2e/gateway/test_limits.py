"""Limits and budgets on a gateway of two replicas (real Redis, Postgres and Kafka; a BusDriver plays the
fleet and sets each Answer's usage): a request reserves its token cap (as much as the limits have room for, at
least its estimate) and opens it as its token budget (tests/e2e/moe_core/llm/test_budget_fleet.py: through the real
fleet), no overspend under concurrency, key and tenant limits, 429 with
Retry-After in the OpenAI and Anthropic envelopes (and through the Responses API), cost budgets from
configured prices, and GET /v1/usage with the same figures in Prometheus."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from gateway.metering import estimate
from moe_core.contracts import ChatMessage, ChatRequest, GenerationParams, Usage, deadline_in
from moe_core.llm.token_budget import BudgetExhausted, TokenBudgets
from tests.e2e.accounts_fixtures import Admin  # the fixtures: tests/e2e/conftest.py
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
MODE = "moe-orchestrator"


def _oai(gateway: ServiceProcess, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)


def _estimate(question: str, max_tokens: int) -> int:
    """The tokens the gateway reserves for this one-message request (gateway.metering.estimate)."""
    request = ChatRequest(response_id="x", tenant_id="t", deadline_at=deadline_in(10), mode=MODE,
                          messages=[ChatMessage(role="user", content=question)],
                          params=GenerationParams(max_tokens=max_tokens))
    prompt, completion = estimate(request, 1024)
    return prompt + completion


async def _answer(driver: BusDriver, marker: str, prompt: int, completion: int) -> None:
    request = await driver.request(marker)
    await driver.answer(request, f"answer {marker}", usage=Usage(prompt_tokens=prompt, completion_tokens=completion))


async def _ask(gateway: ServiceProcess, driver: BusDriver, key: str, usage: tuple[int, int], max_tokens: int = 50,
               model: str = MODE, stream: bool = False) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    backend = asyncio.create_task(_answer(driver, m, *usage))
    messages: Any = [{"role": "user", "content": f"Question {m}"}]
    client = _oai(gateway, key)
    if stream:
        chunks = [c async for c in await client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, stream=True)]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"answer {m}"
    else:
        response = await client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens)
        assert response.choices[0].message.content == f"answer {m}"
    await backend


async def _usage(control_plane: ServiceProcess, key: str, query: str = "", expect: int = 200,
                 requests: int = 0, timeout_s: float = 30) -> dict[str, Any]:
    """The usage report, once it counts `requests` requests (the control plane writes the rows from the
    gateway's usage topic, a moment after the answer) or the time is up."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            response = await http.get(f"{control_plane.url}/v1/usage{query}",
                                      headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == expect, response.text
            result: dict[str, Any] = response.json()
            if expect != 200 or result["totals"]["requests"] >= requests or time.monotonic() > deadline:
                return result
            await asyncio.sleep(0.2)


async def test_concurrent_requests_never_overspend_a_nearly_spent_budget(
        accounts_gateway: ServiceProcess, accounts_control_plane: ServiceProcess,
        accounts_driver: BusDriver, admin: Admin, redis: Redis) -> None:
    tenant = await admin.tenant()
    m = f"C{uuid.uuid4().hex[:8]}"
    each = _estimate(f"Question {m}-0", 50)  # the least a request must be able to reserve
    budget = 40 + 3 * each - 1  # after the first request (40 tokens): room for one request's cap
    key = await admin.key(tenant, limits={"tokens_per_day": budget})
    await _ask(accounts_gateway, accounts_driver, key["secret"], (30, 10))

    client = _oai(accounts_gateway, key["secret"])
    calls = [asyncio.create_task(client.chat.completions.create(
        model=MODE, max_tokens=50, messages=[{"role": "user", "content": f"Question {m}-{i}"}])) for i in range(6)]
    deadline = time.monotonic() + 30
    while sum(c.done() for c in calls) < 5 and time.monotonic() < deadline:  # the refused ones come back at once
        await asyncio.sleep(0.05)
    admitted = [r for r in accounts_driver.requests if m in r.messages[0].content]
    while not admitted and time.monotonic() < deadline:  # the admitted one reaches the bus
        await asyncio.sleep(0.05)
        admitted = [r for r in accounts_driver.requests if m in r.messages[0].content]
    assert len(admitted) == 1 and sum(c.done() for c in calls) == 5, "one admitted with what is left, five refused"
    budgets = TokenBudgets(redis, accounts_gateway.env["MOE_TOPIC_NAMESPACE"])
    assert await budgets.left(admitted[0].response_id) == 3 * each - 1  # its cap: all the room there was
    await accounts_driver.answer(admitted[0], "ok", usage=Usage(prompt_tokens=each - 50, completion_tokens=50))
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 5 and len([r for r in results if not isinstance(r, Exception)]) == 1
    assert all(r.code == "rate_limit_exceeded" and int(r.response.headers["retry-after"]) >= 1 for r in refused)
    assert await budgets.left(admitted[0].response_id) == 0  # settled: closed, no late model call runs

    totals = (await _usage(accounts_control_plane, key["secret"], requests=2))["totals"]
    assert totals["total_tokens"] == 40 + each <= budget and totals["requests"] == 2
    await _ask(accounts_gateway, accounts_driver, key["secret"], (each - 50, 50))  # the refund made room again
    with pytest.raises(openai.RateLimitError):  # what is left is less than one more request
        await client.chat.completions.create(model=MODE, max_tokens=50,
                                             messages=[{"role": "user", "content": f"Question {m}-9"}])


async def test_a_tenant_budget_is_shared_by_its_keys(accounts_gateway: ServiceProcess, accounts_driver: BusDriver,
                                                     admin: Admin) -> None:
    m = f"T{uuid.uuid4().hex[:8]}"
    each = _estimate(f"Question {m}", 50)
    tenant = await admin.tenant(limits={"tokens_per_day": each + each // 2})
    first, second = (await admin.key(tenant))["secret"], (await admin.key(tenant))["secret"]
    held = asyncio.create_task(_oai(accounts_gateway, first).chat.completions.create(
        model=MODE, max_tokens=50, messages=[{"role": "user", "content": f"Question {m}"}]))
    request = await accounts_driver.request(m)  # the first key's request holds its reservation
    with pytest.raises(openai.RateLimitError) as refused:
        await _oai(accounts_gateway, second).chat.completions.create(
            model=MODE, max_tokens=50, messages=[{"role": "user", "content": f"Question {m}"}])
    assert "tenant's tokens per day" in refused.value.message
    await accounts_driver.answer(request, "ok", usage=Usage(prompt_tokens=3, completion_tokens=2))
    await held
    await _ask(accounts_gateway, accounts_driver, second, (3, 2))  # settled: the refund makes room


async def test_over_a_limit_is_a_429_with_retry_after_in_each_envelope(
        accounts_gateway: ServiceProcess, admin: Admin) -> None:
    key = (await admin.key(await admin.tenant(), limits={"tokens_per_month": 0}))["secret"]
    messages: Any = [{"role": "user", "content": "hello"}]
    with pytest.raises(openai.RateLimitError) as oerr:
        await _oai(accounts_gateway, key).chat.completions.create(model=MODE, messages=messages, stream=True)
    body: Any = oerr.value.body
    assert {**body, "message": ""} == {"message": "", "type": "rate_limit_error", "param": None,
                                       "code": "rate_limit_exceeded"}
    assert body["message"].startswith("Rate limit reached: the key's tokens per month limit would be exceeded.")
    assert 1 <= int(oerr.value.response.headers["retry-after"]) <= 31 * 86400
    with pytest.raises(openai.RateLimitError) as rerr:
        await _oai(accounts_gateway, key).responses.create(model=MODE, input="hello")
    assert rerr.value.code == "rate_limit_exceeded"

    ant = anthropic.AsyncAnthropic(base_url=accounts_gateway.url, api_key=key, max_retries=0, timeout=30)
    for stream in (False, True):
        with pytest.raises(anthropic.RateLimitError) as aerr:
            await ant.messages.create(model=MODE, max_tokens=64, messages=messages, stream=stream)
        body = aerr.value.body
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "key's tokens per month" in body["error"]["message"]
        assert int(aerr.value.response.headers["retry-after"]) >= 1


async def test_requests_per_minute(accounts_gateway: ServiceProcess, accounts_driver: BusDriver,
                                   admin: Admin) -> None:
    for _ in range(2):  # a minute boundary between the requests opens a new window: then once more
        minute = int(time.time()) // 60
        key = (await admin.key(await admin.tenant(), limits={"requests_per_minute": 2}))["secret"]
        await _ask(accounts_gateway, accounts_driver, key, (1, 1))
        await _ask(accounts_gateway, accounts_driver, key, (1, 1), stream=True)
        try:
            await _oai(accounts_gateway, key).chat.completions.create(
                model=MODE, messages=[{"role": "user", "content": "third"}])
        except openai.RateLimitError as exc:
            assert 1 <= int(exc.response.headers["retry-after"]) <= 60
            assert "requests per minute" in exc.message
            return
        assert int(time.time()) // 60 != minute, "the third request in one minute was admitted"
    raise AssertionError("two minute boundaries in two attempts")


async def test_a_cost_budget_from_configured_prices(accounts_gateway: ServiceProcess,
        accounts_control_plane: ServiceProcess, accounts_driver: BusDriver, admin: Admin) -> None:
    # moe-orchestrator costs 2 per million input and 10 per million output tokens (accounts_fixtures.PRICES)
    key = await admin.key(await admin.tenant(), limits={"cost_per_day": 0.001})
    await _ask(accounts_gateway, accounts_driver, key["secret"], (100, 50), max_tokens=40)  # 0.0007
    report = await _usage(accounts_control_plane, key["secret"], requests=1)
    assert report["totals"]["cost"] == pytest.approx(0.0007) and report["current"]["cost_per_day"] == 0.0007
    with pytest.raises(openai.RateLimitError) as refused:  # 40 output tokens alone would cost 0.0004
        await _oai(accounts_gateway, key["secret"]).chat.completions.create(
            model=MODE, max_tokens=40, messages=[{"role": "user", "content": "one more"}])
    assert "cost per day" in refused.value.message


async def _expositions(gateway: ServiceProcess, path: str = "/metrics", key: str | None = None) -> list[str]:
    """The exposition of each of both replicas (each process has its own registry)."""
    per_replica: dict[str, str] = {}
    headers = {"Connection": "close", **({"Authorization": f"Bearer {key}"} if key else {})}
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(60):
            response = await http.get(f"{gateway.url}{path}", headers=headers)
            assert response.status_code == 200, response.text
            per_replica[response.headers["x-moe-replica"]] = response.text
            if len(per_replica) == 2:
                return list(per_replica.values())
    raise AssertionError("the metrics of only one replica were seen")


def _sum(expositions: list[str], name: str, labels: dict[str, str]) -> float:
    return sum(s.value for text in expositions for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_usage_by_day_mode_and_model_with_the_same_figures_in_prometheus(
        accounts_gateway: ServiceProcess, accounts_control_plane: ServiceProcess,
        accounts_driver: BusDriver, admin: Admin, admin_key: str) -> None:
    tenant, other = await admin.tenant(), await admin.tenant()
    key = await admin.key(tenant)
    await _ask(accounts_gateway, accounts_driver, key["secret"], (10, 5))
    await _ask(accounts_gateway, accounts_driver, key["secret"], (20, 7), stream=True)
    await _ask(accounts_gateway, accounts_driver, key["secret"], (4, 1), model="claude-sonnet-4-5")
    report = await _usage(accounts_control_plane, key["secret"], requests=3)
    assert report["key_id"] == key["id"]
    rows = {(r["mode"], r["model"]): r for r in report["data"]}
    assert set(rows) == {(MODE, MODE), (MODE, "claude-sonnet-4-5")}
    assert (rows[MODE, MODE]["requests"], rows[MODE, MODE]["prompt_tokens"],
            rows[MODE, MODE]["completion_tokens"]) == (2, 30, 12)
    assert rows[MODE, "claude-sonnet-4-5"]["total_tokens"] == 5
    assert rows[MODE, MODE]["cost"] == pytest.approx((30 * 2 + 12 * 10) / 1e6)  # the mode's price
    assert report["totals"]["total_tokens"] == 47 and report["current"]["tokens_per_day"] == 47

    assert (await _usage(accounts_control_plane, key["secret"], f"?tenant_id={tenant}"))["totals"]["requests"] == 3
    await _usage(accounts_control_plane, key["secret"], f"?tenant_id={other}", expect=403)
    await _usage(accounts_control_plane, key["secret"], "?key_id=someoneelse", expect=403)
    await _usage(accounts_control_plane, key["secret"], "?start=yesterday", expect=400)
    await _usage(accounts_control_plane, key["secret"], "?start=2026-02-01&end=2026-01-01", expect=400)
    seen_by_admin = await _usage(accounts_control_plane, admin_key, f"?key_id={key['id']}")
    assert seen_by_admin["totals"] == report["totals"]

    # per tenant and key: only for admin keys, at /v1/admin/metrics
    labels = {"tenant": tenant, "key": key["id"]}
    private = await _expositions(accounts_gateway, "/v1/admin/metrics", admin_key)
    assert _sum(private, "moe_gateway_tenant_requests_total", labels) == 3
    assert _sum(private, "moe_gateway_tenant_tokens_total", labels) == 47
    assert _sum(private, "moe_gateway_tenant_tokens_total", {**labels, "kind": "prompt"}) == 34
    assert _sum(private, "moe_gateway_tenant_cost_total", {**labels, "model": MODE}) == pytest.approx(
        (30 * 2 + 12 * 10) / 1e6)
    async with httpx.AsyncClient(base_url=accounts_gateway.url, timeout=30) as http:
        user = await http.get("/v1/admin/metrics", headers={"Authorization": f"Bearer {key['secret']}"})
        assert (user.status_code, user.json()["error"]["code"]) == (403, "insufficient_role")
        assert (await http.get("/v1/admin/metrics")).status_code == 401
    # the open /metrics of every replica: usage by mode, and no tenant, key or client model id anywhere
    public = await _expositions(accounts_gateway)
    assert _sum(public, "moe_gateway_usage_requests_total", {"mode": MODE}) >= 3
    for text in public:
        assert tenant not in text and key["id"] not in text and "claude-sonnet-4-5" not in text
        assert 'tenant="' not in text and 'key="' not in text


async def test_a_request_abandoned_before_its_answer_is_charged_what_its_model_calls_held(
        accounts_gateway: ServiceProcess, accounts_control_plane: ServiceProcess,
        accounts_driver: BusDriver, admin: Admin, redis: Redis) -> None:
    key = await admin.key(await admin.tenant())
    m = f"A{uuid.uuid4().hex[:8]}"
    body = {"model": MODE, "stream": True, "max_tokens": 50, "messages": [{"role": "user", "content": f"Question {m}"}]}
    budgets = TokenBudgets(redis, accounts_gateway.env["MOE_TOPIC_NAMESPACE"])
    async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "POST", f"{accounts_gateway.url}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {key['secret']}"}) as response:
        assert response.status_code == 200
        request = await accounts_driver.request(m)
        assert await budgets.take(request.response_id, 300, 40) == 40  # a stage's model call holds 340
    await accounts_driver.cancel(request.response_id)  # the gateway saw the client go
    deadline = time.monotonic() + 15
    while (totals := (await _usage(accounts_control_plane, key["secret"]))["totals"])["requests"] == 0:
        assert time.monotonic() < deadline, "the abandoned request was never charged"
        await asyncio.sleep(0.1)
    assert totals["total_tokens"] == 340
    with pytest.raises(BudgetExhausted):  # closed: no further model call of that request runs
        await budgets.take(request.response_id, 1, 1)
