"""A token budget holds through the real fleet (scripted models): concurrent orchestrated requests with a tiny
max_tokens at a nearly spent budget never settle more than the budget, however many model calls each
request makes (planner, experts, thinking, judge). The reservation is the request's token cap, and every model
call holds its bound of it before it runs (moe_core.llm.token_budget); a request whose cap runs out says so.

Under the old reservation — (prompt estimate + max_tokens), about 20 tokens here — all six requests were
admitted and each spent hundreds of tokens: the settled total was well over the budget."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.accounts_fixtures import Admin
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.fleet import Fleet
from tests.support.keys import create_key
from tests.support.scripted_core import completion_tokens, prompt_tokens

pytestmark = pytest.mark.e2e
MODE = "moe-orchestrator"
# Tokens per day. One request's pipeline (planner, two experts, thinking, judge) counts ~470 tokens, so six
# requests admitted on the old reservation settled ~2800; and the planner's call alone holds a bound (its prompt's
# bytes + max_tokens) larger than this, so the admitted request runs out of budget and says so.
BUDGET = 1700


@pytest.fixture
async def fleet_admin(fleet: Fleet, infra: dict[str, str]) -> AsyncIterator[Admin]:
    # the fleet operator: it creates a tenant (a tenant admin may not)
    admin = Admin(fleet["control-plane"].url, await create_key(infra["postgres"], "e2e-budget-admin", "operator",
                                                         ["tenant-e2e-admin"]))
    yield admin
    await admin.aclose()


def _script(scripted: Scripted, marker: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": marker,
         "reply": plan_reply(("general", f"Explain tides {marker}"), ("science", f"Physics of tides {marker}"))},
        {"model": "expert-model", "contains": marker,
         "reply": "The moon pulls the sea and the sun helps a little.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": marker, "reply": "Tides come from the moon's gravity gradient."},
    ])


async def test_concurrent_orchestrated_requests_never_overspend_a_nearly_spent_budget(
        fleet: Fleet, fleet_admin: Admin, scripted: Scripted) -> None:
    m = f"B{uuid.uuid4().hex[:8]}"
    _script(scripted, m)
    key = await fleet_admin.key(await fleet_admin.tenant(), limits={"tokens_per_day": BUDGET})
    client = openai.AsyncOpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=key["secret"], max_retries=0,
                                timeout=90)
    calls = [client.chat.completions.create(model=MODE, max_tokens=5, messages=[
        {"role": "user", "content": f"Why are there tides? {m}-{i}"}]) for i in range(6)]
    results: list[Any] = await asyncio.gather(*calls, return_exceptions=True)

    answered = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(answered) + len(refused) == len(results), results
    assert answered, "at least one request gets what is left of the budget"
    spent = sum(r.usage.total_tokens for r in answered)
    totals = (await _usage(fleet, key["secret"], requests=len(answered)))["totals"]
    assert totals["total_tokens"] == spent <= BUDGET
    assert totals["requests"] == len(answered)

    made = calls_for(scripted.calls(), m)  # what the models really counted: the same figure
    assert sum(prompt_tokens(c["messages"]) + completion_tokens(c["reply"]) for c in made) == spent
    assert all(isinstance(c["max_tokens"], int) and c["max_tokens"] <= BUDGET for c in made)
    ran_out = [r for r in answered if r.choices[0].finish_reason == "length"]
    assert ran_out, "max_tokens 5 or the budget: the answers are cut, and say so with finish_reason length"
    # a request that ran out of its budget says so (one cut only by its max_tokens has no such note)
    noted = [r for r in answered if "token budget" in (r.choices[0].message.content or "")]
    assert all(r.choices[0].finish_reason == "length" for r in noted)


async def _usage(fleet: Fleet, key: str, requests: int = 0, timeout_s: float = 30) -> dict[str, Any]:
    """The key's usage report, once it counts `requests` requests (the control plane writes the rows from the
    gateway's usage topic, a moment after the answers) or the time is up."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            response = await http.get(f"{fleet['control-plane'].url}/v1/usage",
                                      headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            if result["totals"]["requests"] >= requests or time.monotonic() > deadline:
                return result
            await asyncio.sleep(0.2)
