"""The expert-worker's Redis round trips per task, counted against the real Redis (issue 52). Before: a GET of the
fleet configuration's overlay before each task, then the pipeline that reads the stored outcome, the Cancel mark and
the scores, and the write of the outcome. Now the overlay rides in the first pipeline (the handler is
declared models=False) and is laid over the models' configuration before the task runs: a changed overlay still
picks the expert's model. Counted, never timed."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from expert_worker.app import create_app
from expert_worker.settings import ExpertSettings
from moe_core.contracts import ExpertTask, TaskResult, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.llm.inference.live import FleetOverrides, LiveOverrides, live_key
from moe_core.llm.inference.servers import ModelRef
from moe_core.runtime.bus import Bus
from tests.support.counting_redis import OpsRedis
from tests.support.in_memory import collect
from tests.support.scripted_llm import create_app as scripted_llm

pytestmark = pytest.mark.infra  # real Redis; FastStream's in-memory broker (the Kafka hops are not counted here)
SERVERS = '[{"name":"s","url":"http://s","models":["expert-model","other-model"],"max_retries":0}]'


@pytest.fixture
async def counted(infra: dict[str, str]) -> AsyncIterator[OpsRedis]:
    client = OpsRedis.from_url(infra["redis"], decode_responses=True)
    client.ops = Counter()
    yield client
    await client.aclose()


async def _run(namespace: str, redis: OpsRedis, rid: str) -> tuple[list[TaskResult], list[str], Counter[str]]:
    llm = scripted_llm({"models": ["expert-model", "other-model"], "rules": [
        {"model": "expert-model", "reply": "The Moon pulls the sea."},
        {"model": "other-model", "reply": "Tides come from the Moon's gravity."}]})
    settings = ExpertSettings(topic_namespace=namespace, inference_servers=SERVERS,
                              expert_templates='{"general": ["expert-model"]}')
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)),
                                live=LiveOverrides(redis, namespace))  # the overlay read as the fleet's worker reads it
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, manage_broker=False)
    results = collect(bus, bus.topics.results, TaskResult)
    task = ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1", category="general",
                      instruction="Why are there tides?", question="Why are there tides?")
    redis.ops.clear()
    async with TestKafkaBroker(bus.broker):
        await bus.publish(task, bus.topics.tasks_expert)
    return results, [c["model"] for c in llm.state.scripted.get_calls()], Counter(redis.ops)


async def test_a_task_costs_the_worker_two_round_trips_and_no_get(counted: OpsRedis, namespace: str) -> None:
    results, models, ops = await _run(namespace, counted, f"r-{namespace}")
    assert [r.content for r in results] == ["The Moon pulls the sea."] and models == ["expert-model"]
    # the stored outcome, the Cancel mark, the scores and the overlay in one pipeline; the outcome stored (SET NX: no
    # model call's budget give-back was deferred to go with it, this client holds no budgets)
    assert ops == {"pipeline": 1, "set": 1}, ops


async def test_the_overlay_read_ahead_picks_the_model(counted: OpsRedis, namespace: str) -> None:
    """The console moved the category to another model: the next task uses it (its scores, read ahead for the
    models the configuration named before, are read again for the new ones)."""
    overlay = FleetOverrides(version=2, experts={"general": [ModelRef(model="other-model")]})
    await counted.set(live_key(namespace), overlay.model_dump_json())
    try:
        results, models, ops = await _run(namespace, counted, f"r2-{namespace}")
    finally:
        await counted.delete(live_key(namespace))
    assert [r.content for r in results] == ["Tides come from the Moon's gravity."] and models == ["other-model"]
    assert "get" not in ops
