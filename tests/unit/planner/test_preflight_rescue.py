"""Issue 30, item 3: the planner plans the tool tasks the preflight missed. When the plan (here the scripted
planner model's) has no tool task, the preflight reads the plan's instructions and the question's clauses;
a tool task is added only when its values all come from the question and every value of the question is
bound, never a guess. The answers are checked against ipaddress/hashlib/Decimal, not the tools' own code."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import TestKafkaBroker

from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts import ChatMessage, ChatRequest, ExpertTask, Plan, PlannedTask, ToolTask, deadline_in
from moe_core.contracts.tools import select_tools
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from planner.app import create_app as planner_app
from planner.rescue import clauses, rescue
from planner.settings import PlannerSettings
from planner.tool_catalogue import ToolCatalogue
from tests.conftest import Scripted, scripted_env
from tests.support.in_memory import collect, planner_on

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())


def expert(instruction: str, category: str = "general", task_id: str = "t1") -> PlannedTask:
    return PlannedTask(task_id=task_id, category=category, instruction=instruction)


def tool_result(task: PlannedTask) -> dict[str, object]:
    assert task.kind == "tool" and task.tool is not None
    return IMPLEMENTATIONS[task.tool](task.args).result


def test_an_instruction_the_preflight_claims_becomes_the_tool_task() -> None:
    question = "my office network is 10.20.0.0/22, I want its broadcast"
    tasks = rescue(question, [expert("Compute the broadcast address of 10.20.0.0/22", "technical")], ALL, 4)
    assert [t.kind for t in tasks] == ["tool"]
    assert tool_result(tasks[0])["broadcast"] == str(ipaddress.ip_network("10.20.0.0/22").broadcast_address)


def test_a_clause_the_preflight_claims_goes_beside_the_expert_task() -> None:
    question = 'We are auditing downloads. What is the SHA-256 of "fleet"? Also, why do people still use MD5?'
    assert clauses(question)[1] == 'What is the SHA-256 of "fleet"?'
    tasks = rescue(question, [expert(question)], ALL, 4)
    assert [(t.task_id, t.kind) for t in tasks] == [("t1", "tool"), ("t2", "expert")]
    assert hashlib.sha256(b"fleet").hexdigest() in IMPLEMENTATIONS["hash_text"](tasks[0].args).text


@pytest.mark.parametrize(("question", "instruction"), [
    # the model changed a value: not the question's network
    ("my office network is 10.20.0.0/22, I want its broadcast", "Compute the broadcast address of 10.20.0.0/23"),
    # the model changed what is asked (a word the question does not use)
    ("for 10.0.0.0/24 I need something", "Compute the broadcast address of 10.0.0.0/24"),
    # a value outside the claimed clause: which numbers belong to the tool?
    ("convert 5 km to miles, but assume a mile is 1.5 km", "Explain the conversion"),
    ("We have a meeting. What is 15% of 240? Also what is 3 + 4 in Roman numerals?", "answer both"),
    # a quote outside the claimed clause
    ('I ask this. What is the SHA-256 of "a"? And what does "b" mean?', "answer"),
    # nothing a tool answers
    ("Tell me about subnets. Why do they exist?", "Explain subnets"),
])
def test_unbound_or_ungrounded_values_leave_the_plan_alone(question: str, instruction: str) -> None:
    tasks = [expert(instruction)]
    assert rescue(question, tasks, ALL, 4) is tasks


def test_a_plan_with_a_tool_task_or_no_room_is_left_alone() -> None:
    planned = [PlannedTask(task_id="t1", kind="tool", category="precision", instruction="x", tool="calculate",
                           args={"expression": "2+2"})]
    assert rescue("I wonder. What is 15% of 240?", planned, ALL, 4) is planned
    full = [expert("a", task_id="t1"), expert("b", task_id="t2")]
    assert rescue("I wonder. What is 15% of 240?", full, ALL, 2) is full


def test_a_tool_that_is_switched_off_is_not_planned() -> None:
    without = ToolCatalogue(select_tools(disabled="subnet_calc"))
    tasks = [expert("Compute the broadcast address of 10.20.0.0/22")]
    assert rescue("network 10.20.0.0/22: broadcast address?", tasks, without, 4) is tasks


@pytest.mark.infra  # real Redis behind the planner's memo; FastStream's in-memory broker
async def test_the_planner_adds_the_tool_task_its_model_did_not_plan(redis, namespace: str) -> None:
    # (a question the preflight alone does not claim: the first sentence asks for a judgement)
    question = ("I'm planning my savings and wonder whether it is a good idea. If I invest $2,000 at 5% compounded "
                "yearly for 3 years, how much do I end up with?")
    llm, bus = planner_on(namespace, redis, [{"reply": json.dumps({"tasks": [
        {"category": "general", "instruction": "Explain saving with compound interest"}]})}])
    plans = collect(bus, bus.topics.plans, Plan)
    tools = collect(bus, bus.topics.tasks_mcp, ToolTask)
    experts = collect(bus, bus.topics.tasks_expert, ExpertTask)
    request = ChatRequest(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(request, bus.topics.requests)
    assert len(llm.state.scripted.get_calls()) == 1  # the model planned; the preflight alone did not claim it
    assert [(t.kind, t.tool) for t in plans[0].tasks] == [("tool", "decimal_finance"), ("expert", None)]
    assert len(tools) == 1 and len(experts) == 1
    expected = (Decimal(2000) * Decimal("1.05") ** 3).quantize(Decimal("0.01"))
    assert IMPLEMENTATIONS["decimal_finance"](tools[0].args).result["result"] == str(expected)


@pytest.mark.infra  # the real Kafka broker (and Redis), the scripted inference server over HTTP
async def test_on_the_real_broker_the_rescued_tool_task_reaches_the_mcp_topic(
        infra: dict[str, str], namespace: str, scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in scripted_env(scripted.url).items():
        monkeypatch.setenv(key, value)
    scripted.script([{"model": "planner-model", "reply": json.dumps(
        {"tasks": [{"category": "technical", "instruction": "Help with the VLAN setup"}]})}])
    settings = PlannerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                               semantic_cache_enabled=False, router_enabled=False, planner_skip_trivial=False,
                               planner_graph_tasks=False)
    app = planner_app(settings)
    bus = Bus(settings)
    rid = f"r{uuid.uuid4().hex[:8]}"
    question = "We are splitting the office network, but why? What is the broadcast address of 172.20.64.0/18?"
    request = ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=question)])
    async with app.router.lifespan_context(app):
        producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]))
        await producer.start()
        try:
            await producer.send_and_wait(bus.topics.requests, request.model_dump_json().encode(), key=rid.encode())
        finally:
            await producer.stop()
        records = await _first(infra["kafka"], bus.topics.tasks_mcp)
    task = ToolTask.model_validate_json(records.value)
    assert (task.response_id, task.tool) == (rid, "subnet_calc")
    assert IMPLEMENTATIONS["subnet_calc"](task.args).result["broadcast"] == str(
        ipaddress.ip_network("172.20.64.0/18").broadcast_address)
    assert len(scripted.calls()) == 1  # the model planned (an expert task only); the rescue added the tool task


async def _first(bootstrap: str, topic: str, timeout: float = 30) -> Any:
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap=bootstrap), auto_offset_reset="earliest",
                                group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < end:
            for items in (await consumer.getmany(timeout_ms=200)).values():
                if items:
                    return items[0]
    finally:
        await consumer.stop()
    raise AssertionError(f"nothing on {topic}")
