"""Shared behaviour of every stage on the real Kafka broker: consumes its input, emits its output with
the same response_id and the same trace, and dead-letters a payload it cannot parse."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

from critic.app import create_app as critic_app
from critic.settings import CriticSettings
from expert_worker.app import create_app as expert_app
from expert_worker.settings import ExpertSettings
from gap_healer.app import create_app as gap_healer_app
from gap_healer.settings import GapHealerSettings
from graph_ingest.app import create_app as graph_ingest_app
from graph_ingest.settings import GraphIngestSettings
from graph_rag.app import create_app as graph_rag_app
from graph_rag.settings import GraphRagSettings
from guardrail.app import create_app as guardrail_app
from guardrail.settings import GuardrailSettings
from merger.app import create_app as merger_app
from merger.settings import MergerSettings
from moe_core.contracts import (
    Answer,
    ChatMessage,
    ChatRequest,
    Draft,
    ExpertTask,
    GraphTask,
    IngestEvent,
    LintRequest,
    Plan,
    PlannedTask,
    ResearchTask,
    deadline_in,
)
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from planner.app import create_app as planner_app
from planner.settings import PlannerSettings
from research.app import create_app as research_app
from research.settings import ResearchSettings
from tests.conftest import Scripted, scripted_env
from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.infra
TRACE_ID = uuid.uuid4().hex
TRACEPARENT = f"00-{TRACE_ID}-{'1' * 16}-01"


def _planner_input(rid: str) -> ChatRequest:
    return ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="hello")])


def _expert_input(rid: str) -> ExpertTask:
    return ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                      category="general", instruction="say hi", question="hello")


def _merger_input(rid: str) -> Plan:
    return Plan(response_id=rid, tenant_id="t", deadline_at=deadline_in(1), mode="moe-orchestrator",
                question="hello", tasks=[PlannedTask(task_id="t1", category="general", instruction="hi")])


def _research_input(rid: str) -> ResearchTask:  # no SearXNG listens: an error result, still a result
    return ResearchTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="r1", question="hello")


def _critic_input(rid: str) -> Draft:
    fields = {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(30)}
    return Draft(**fields, question="hello", categories=["medical_consult"],
                 answer=Answer(**fields, mode="moe-orchestrator", content="Drink water."))


def _guard_input(rid: str) -> Draft:  # tenant "t" has no rules (the repository's default): passed unchanged
    return _critic_input(rid).model_copy(update={"categories": [], "guarded": True})


def _graph_input(rid: str) -> GraphTask:
    return GraphTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t2",
                     question="Does aspirin interact with warfarin?")


def _ingest_input(rid: str) -> IngestEvent:  # the scripted model extracts nothing: an `ingested` audit event
    return IngestEvent(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), question="hello", answer="Hi.")


def _lint_input(rid: str) -> LintRequest:  # tenant "t" holds no graph data: a `lint_completed` audit event
    return LintRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(30))


def _with_neo4j(factory: Callable[..., FastAPI]) -> Callable[..., FastAPI]:
    """The graph stages need Neo4j (started if it is not running)."""

    def make(settings: Any) -> FastAPI:
        from fleetlib import api

        api.ensure_up(["neo4j"])
        user, password = neo4j_auth()  # set when the local Neo4j was initialised with a password
        return factory(settings.model_copy(update={"neo4j_user": user, "neo4j_password": password}))

    return make


STAGES: dict[str, tuple[Callable[..., FastAPI], type, str, str, Callable[[str], Any]]] = {
    "planner": (planner_app, PlannerSettings, "requests", "plans", _planner_input),
    "expert-worker": (expert_app, ExpertSettings, "tasks_expert", "results", _expert_input),
    "merger": (merger_app, MergerSettings, "plans", "answers", _merger_input),  # answers at its deadline
    "research": (research_app, ResearchSettings, "tasks_research", "results", _research_input),
    "critic": (critic_app, CriticSettings, "drafts", "answers", _critic_input),
    "guardrail": (guardrail_app, GuardrailSettings, "guard", "answers", _guard_input),
    "graph-rag": (_with_neo4j(graph_rag_app), GraphRagSettings, "tasks_graph", "results", _graph_input),
    "graph-ingest": (_with_neo4j(graph_ingest_app), GraphIngestSettings, "ingest", "audit", _ingest_input),
    "gap-healer": (_with_neo4j(gap_healer_app), GapHealerSettings, "linting", "audit", _lint_input),
}


async def _collect(bootstrap: str, topic: str, want: int, timeout: float = 20) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap=bootstrap), auto_offset_reset="earliest",
                                group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    records: list[Any] = []
    try:
        end = asyncio.get_running_loop().time() + timeout
        while len(records) < want and asyncio.get_running_loop().time() < end:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    return records


@pytest.mark.parametrize("stage", list(STAGES))
async def test_stage_contract_on_the_real_broker(stage: str, infra: dict[str, str], namespace: str,
                                                 scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    factory, settings_cls, input_name, output_name, make_input = STAGES[stage]
    for key, value in scripted_env(scripted.url).items():
        monkeypatch.setenv(key, value)
    scripted.script([{"model": "planner-model", "reply": json.dumps(
        {"tasks": [{"category": "general", "instruction": "hi"}]})}])
    settings = settings_cls(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"])
    app = factory(settings)
    bus = Bus(settings)
    rid = f"r{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]))
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            good = make_input(rid).model_dump_json().encode()
            await producer.send_and_wait(getattr(bus.topics, input_name), good, key=rid.encode(),
                                         headers=[("traceparent", TRACEPARENT.encode())])
            await producer.send_and_wait(getattr(bus.topics, input_name), b"{broken json", key=b"rbad")
        finally:
            await producer.stop()
        outputs = await _collect(infra["kafka"], getattr(bus.topics, output_name), 1)
        letters = await _collect(infra["kafka"], bus.topics.deadletter, 1)
    assert outputs, f"{stage} published nothing to {output_name}"
    out = outputs[0]
    assert out.key == rid.encode()
    assert json.loads(out.value)["response_id"] == rid
    headers = dict(out.headers)
    assert TRACE_ID in headers["traceparent"].decode(), "the trace was not propagated"
    assert len(letters) == 1
    letter = json.loads(letters[0].value)
    assert (letter["response_id"], letter["error_type"], letter["consumer"]) == ("rbad", "validation_error", stage)
    assert letter["payload"] == "{broken json"
