"""Scripts for the scripted inference server and exact expectations computed from its recorded calls."""

from __future__ import annotations

import json
import uuid
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.exact_cache import ExactAnswers, cache_scope
from tests.support.scripted_core import completion_tokens, prompt_tokens


def plan_reply(*tasks: tuple[str, str]) -> str:
    return json.dumps({"tasks": [{"category": c, "instruction": i} for c, i in tasks]})


def calls_for(calls: list[dict[str, Any]], marker: str) -> list[dict[str, Any]]:
    """The recorded calls that belong to one request (its marker appears in some message)."""
    return [c for c in calls if any(marker in str(m.get("content", "")) for m in c["messages"])]


def expected_usage(calls: list[dict[str, Any]]) -> tuple[int, int]:
    prompt = sum(prompt_tokens(c["messages"]) for c in calls)
    completion = sum(completion_tokens(c["reply"]) for c in calls)
    return prompt, completion


def marker(prefix: str = "M") -> str:
    """A unique word for one request: scripts match it and recorded calls are found by it."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def weather_rules(m: str, asked: str = "") -> list[dict[str, Any]]:
    """The planner plans one general task; the expert model calls get_weather(city=Oslo) once (for a request
    containing `asked`, default the marker `m`), then answers from the tool's result."""
    return [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Weather {m}"))},
        {"model": "expert-model", "contains": asked or m, "times": 1,
         "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"model": "expert-model", "contains": m, "reply": "It is 3 C in Oslo.\nCONFIDENCE: high"},
    ]


def exact_key(namespace: str, question: str, tenant: str = "tenant-e2e") -> str:
    """The gateway's exact-repeat key of `question` asked by `tenant` (the planner's write-behind writes it)."""
    request = ChatRequest(response_id="r", tenant_id=tenant, deadline_at=deadline_in(9), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=question)])
    return ExactAnswers(AsyncRedis(), namespace, 0).key(cache_scope(request) or "", question)
