"""The planner's Produce requests per request, counted on the real broker (issue 52): a planned request's egress
record goes out with its plan and tasks, in one Produce request. Before, the record was awaited alone first: two
Produce requests (two socket sends, two acknowledgements) per request. Counted, never timed: the requests the
planner's own producer hands to its connection, by the topics they carry."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from tests.infra.planner.harness import running_planner
from tests.support.produce_requests import produce_requests

pytestmark = pytest.mark.infra
PLAN = json.dumps({"tasks": [{"category": "technical_support", "instruction": "answer the question"}]})


async def test_a_planned_request_is_one_produce_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_KAFKA_PRODUCER", "aiokafka")  # its Produce requests are counted in aiokafka's client
    async with running_planner(PLAN) as harness:
        rid = f"r{uuid.uuid4().hex[:12]}"
        sent = produce_requests(harness.planner.bus, rid.encode())
        request = ChatRequest(response_id=rid, tenant_id="t-produce", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", messages=[ChatMessage(
                                  role="user", content=f"How do I reset router model {uuid.uuid4().int % 900}?")])
        await harness.producer.send_and_wait(harness.topics.requests, request.model_dump_json().encode(),
                                             key=rid.encode())
        for _ in range(600):
            if any(harness.topics.plans in topics for topics in sent):
                break
            await asyncio.sleep(0.1)
    assert any(harness.topics.plans in topics for topics in sent), "the planner published no plan"
    # one Produce request: the egress record (the gate decides every request: MOE_EGRESS_ENFORCED's default) with
    # the plan and its tasks
    assert len(sent) == 1, sent
    assert {harness.topics.audit, harness.topics.plans, harness.topics.tasks_expert} <= sent[0]
