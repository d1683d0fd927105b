"""A client that disconnects while the experts still work: the gateway publishes Cancel, the slow expert's
call is stopped, the merger closes the request, and neither the thinking step nor the judge is called."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.fleet import Fleet
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e


async def test_a_disconnect_stops_the_requests_remaining_model_calls(
        fleet: Fleet, base_url: str, api_key: str, scripted: Scripted, infra: dict[str, str]) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Quick part {m}"), ("science", f"Slow part {m}"))},
        {"model": "expert-model", "contains": f"Quick part {m}", "reply": "Quick.\nCONFIDENCE: medium"},
        {"model": "expert-model", "contains": f"Slow part {m}", "reply": "Too late.\nCONFIDENCE: high",
         "delay_ms": 60_000},
        {"model": "judge-model", "contains": m, "reply": "never"},
    ])
    namespace = fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    results, answers = f"{namespace}.results.v1", f"{namespace}.answers.v1"
    body = {"model": "moe-orchestrator", "stream": True,
            "messages": [{"role": "user", "content": f"Two parts, one slow {m}"}]}
    async with TopicReader(infra["kafka"], results, answers) as reader:
        async with httpx.AsyncClient(timeout=60) as http, http.stream(
                "POST", f"{base_url}/chat/completions", json=body,
                headers={"Authorization": f"Bearer {api_key}"}) as response:
            rid = ""
            async for line in response.aiter_lines():  # read until the quick expert has answered
                if not line.startswith("data: {"):
                    continue
                chunk = json.loads(line.removeprefix("data: "))
                rid = chunk["id"].removeprefix("chatcmpl-")
                reasoning = chunk["choices"][0]["delta"].get("reasoning_content") or ""
                if "expert-worker: answered" in reasoning:
                    break
        # the connection is closed here, with the slow expert's call still in flight
        [slow] = await reader.wait(results, lambda r: r["response_id"] == rid and r["category"] == "science")
        closed_all = await reader.wait(answers, lambda a: a["response_id"] == rid)
    # at-least-once: a redelivered input may republish the stored Answer, never a different one
    assert {json.dumps(a["error"], sort_keys=True) for a in closed_all} == {json.dumps(closed_all[0]["error"],
                                                                                        sort_keys=True)}
    closed = closed_all[0]
    # within 30 s (the reader's wait), though the slow call would take 60 s: it was stopped in flight, or it
    # was never started because the Cancel came first
    assert slow["error"] == "cancelled", "the slow expert's call was stopped, not answered"
    assert closed["error"]["code"] == "cancelled"
    calls = calls_for(scripted.calls(), m)
    assert [c["model"] for c in calls if c["model"] == "judge-model"] == [], "no thinking, no judge"
    assert len([c for c in calls if c["model"] == "expert-model"]) <= 2  # nothing retried or started anew
