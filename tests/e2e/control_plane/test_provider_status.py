"""GET /v1/provider-status on the control plane, reading the edge's limits (two gateway replicas beside it, real
Redis, Postgres and Kafka; a BusDriver plays the fleet and sets each Answer's usage): the calling key's and its
tenant's limits with what the window has used and what is left, after real requests; `limited` with the window's
reset when a limit has no room (and the chat API refuses the same key); the tenant chosen with X-Moe-Tenant; key
errors in the OpenAI envelope."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from moe_core.contracts import Usage
from tests.e2e.accounts_fixtures import Admin  # the fixtures: tests/e2e/conftest.py
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
MODE = "moe-orchestrator"


async def _status(control_plane: ServiceProcess, headers: dict[str, str], expect: int = 200) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{control_plane.url}/v1/provider-status", headers=headers)
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


def _limits(scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["limit"]: entry for entry in scope["limits"]}


async def _fresh_minute() -> None:
    """Wait for the next minute if this one has fewer than 20 s left: the requests-per-minute counter the test
    reads must be the one its request counted in."""
    left = 60 - time.time() % 60
    if left < 20:
        await asyncio.sleep(left + 0.5)


async def _ask(gateway: ServiceProcess, driver: BusDriver, key: str, prompt: int, completion: int) -> None:
    marker = f"P{uuid.uuid4().hex[:8]}"

    async def backend() -> None:
        request = await driver.request(marker)
        await driver.answer(request, "ok", usage=Usage(prompt_tokens=prompt, completion_tokens=completion))

    answering = asyncio.create_task(backend())
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)
    await client.chat.completions.create(model=MODE, max_tokens=50,
                                         messages=[{"role": "user", "content": f"Question {marker}"}])
    await answering


async def test_the_status_shows_the_limits_used_and_left_after_a_request(
        accounts_gateway: ServiceProcess, accounts_control_plane: ServiceProcess, accounts_driver: BusDriver,
        admin: Admin) -> None:
    tenant = await admin.tenant(limits={"tokens_per_month": 100_000})
    key = await admin.key(tenant, limits={"requests_per_minute": 5, "tokens_per_day": 50_000})
    auth = {"Authorization": f"Bearer {key['secret']}"}
    fresh = await _status(accounts_control_plane, auth)
    assert (fresh["object"], fresh["status"], fresh["retry_after_s"]) == ("provider_status", "ok", None)
    assert fresh["key"]["id"] == key["id"] and fresh["tenant"]["id"] == tenant
    rpm = _limits(fresh["key"])["requests_per_minute"]
    assert (rpm["max"], rpm["used"], rpm["remaining"], rpm["unit"], rpm["window"]) == (5, 0, 5, "requests", "minute")
    assert 1 <= rpm["resets_in_s"] <= 60
    unlimited = _limits(fresh["key"])["tokens_per_month"]
    assert (unlimited["max"], unlimited["remaining"], unlimited["exhausted"]) == (None, None, False)

    await _fresh_minute()
    await _ask(accounts_gateway, accounts_driver, key["secret"], 30, 10)  # settled: 40 tokens, one request
    after = await _status(accounts_control_plane, {"x-api-key": key["secret"]})  # as Anthropic clients send it
    mine, theirs = _limits(after["key"]), _limits(after["tenant"])
    assert (mine["requests_per_minute"]["used"], mine["requests_per_minute"]["remaining"]) == (1, 4)
    assert (mine["tokens_per_day"]["used"], mine["tokens_per_day"]["remaining"]) == (40, 49_960)
    assert (theirs["tokens_per_month"]["used"], theirs["tokens_per_month"]["remaining"]) == (40, 99_960)
    assert mine["cost_per_day"]["used"] == pytest.approx(30 * 2.0e-6 + 10 * 10.0e-6)  # the configured prices
    assert after["status"] == "ok"


async def test_a_limit_without_room_is_limited_until_its_window_resets(
        accounts_gateway: ServiceProcess, accounts_control_plane: ServiceProcess, admin: Admin) -> None:
    key = (await admin.key(await admin.tenant(), limits={"tokens_per_month": 0}))["secret"]
    status = await _status(accounts_control_plane, {"Authorization": f"Bearer {key}"})
    spent = _limits(status["key"])["tokens_per_month"]
    assert status["status"] == "limited" and spent["exhausted"] and spent["remaining"] == 0
    assert status["retry_after_s"] == spent["resets_in_s"] >= 1
    with pytest.raises(openai.RateLimitError):  # what the status says, the chat API does
        await openai.AsyncOpenAI(base_url=f"{accounts_gateway.url}/v1", api_key=key, max_retries=0).chat \
            .completions.create(model=MODE, messages=[{"role": "user", "content": "hello"}])


async def test_the_tenant_is_the_one_the_request_acts_for(accounts_control_plane: ServiceProcess, admin: Admin) -> None:
    first = await admin.tenant(limits={"tokens_per_day": 10})
    second = await admin.tenant(limits={"tokens_per_day": 0})
    key = (await admin.call("POST", "/keys", {"name": "e2e", "tenant_ids": [first, second]}, 201))["secret"]
    default = await _status(accounts_control_plane, {"Authorization": f"Bearer {key}"})
    chosen = await _status(accounts_control_plane, {"Authorization": f"Bearer {key}", "X-Moe-Tenant": second})
    assert (default["tenant"]["id"], default["status"]) == (first, "ok")
    assert (chosen["tenant"]["id"], chosen["status"]) == (second, "limited")
    assert _limits(chosen["tenant"])["tokens_per_day"]["max"] == 0


async def test_key_errors_are_in_the_openai_envelope(accounts_control_plane: ServiceProcess, admin: Admin) -> None:
    missing = await _status(accounts_control_plane, {}, 401)
    assert missing["error"]["code"] == "invalid_api_key"
    guessed = await _status(accounts_control_plane, {"Authorization": "Bearer moe-nope-guessed"}, 401)
    assert guessed["error"]["code"] == "invalid_api_key"
    key = (await admin.key(await admin.tenant()))["secret"]
    wrong = await _status(accounts_control_plane, {"Authorization": f"Bearer {key}", "X-Moe-Tenant": "not-mine"},
                          403)
    assert (wrong["error"]["type"], wrong["error"]["code"]) == ("permission_error", "wrong_tenant")
