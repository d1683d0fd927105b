"""The planner's ledger holds its planning (moe_core.runtime.observability.ledger.charge_tasks), on the real Kafka,
Redis, Chroma and OPA: `_decide` runs in a task of its own (Cancellations.run), which the run's metering did not
follow, so a plan's `Envelope.cost.cpu_ms` said ~2 ms where the process spent ~14 per full request. Here `_decide`
does a known amount of CPU first; the published plan's ledger must hold at least that. CPU, never wall time."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from tests.infra.planner.harness import running_planner
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
PLAN = json.dumps({"tasks": [{"category": "general", "instruction": "answer"}]})


def _burn() -> float:
    """CPU-bound work; the thread CPU milliseconds it took."""
    started, data = time.thread_time(), b"x" * 4096
    for _ in range(20_000):
        data = hashlib.sha256(data).digest() * 128
    return (time.thread_time() - started) * 1000


async def test_a_plans_ledger_holds_the_cpu_of_its_planning() -> None:
    async with running_planner(PLAN) as h, TopicReader(h.kafka, h.topics.plans) as reader:
        decide, burned = h.planner._decide, []

        async def burning(*args: Any, **kwargs: Any) -> Any:
            burned.append(_burn())
            return await decide(*args, **kwargs)

        async def plan_of(question: str) -> dict[str, Any]:
            request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="t-ledger",
                                  mode="moe-orchestrator", deadline_at=deadline_in(60),
                                  messages=[ChatMessage(role="user", content=question)])
            await h.producer.send_and_wait(h.topics.requests, request.model_dump_json().encode(),
                                           key=request.response_id.encode())
            [plan] = await reader.wait(h.topics.plans, lambda b: b["response_id"] == request.response_id, timeout_s=60)
            return plan

        await plan_of(f"Compare the tax law of two countries {uuid.uuid4().hex[:6]}")  # warm: imports, first calls
        h.planner._decide = burning  # type: ignore[method-assign]
        plan = await plan_of(f"Compare the labour law of two countries {uuid.uuid4().hex[:6]}")
    assert len(burned) == 1 and burned[0] > 0
    assert plan["cost"]["cpu_ms"] >= burned[0], (plan["cost"], burned)  # before: ~2 ms, the burn left out
