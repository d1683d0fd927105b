"""The stage runtime on the in-memory broker with real Redis: a toy stage declared once gets its
subscribers, idempotency, cancellation, dead letters, /ready and /asyncapi from the declaration."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Cancel, DeadLetter, Feedback, TaskResult, ToolTask, deadline_in
from moe_core.runtime.bus import Bus, PermanentError
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.resources import Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import EVERY_TOPIC, CancelPolicy, Consumes, MemoPolicy, Stage

pytestmark = pytest.mark.unit


class ToySettings(FleetSettings):
    service_name: str = "toy"
    result_ttl_s: int = 60


class Toy:
    """Answers a ToolTask with its tool name; `boom` fails for good, `permanent` says so."""

    def __init__(self, res: Resources) -> None:
        self.bus = res.bus
        self.outcomes = res.outcomes()
        self.computed: list[str] = []
        self.cancelled: list[str] = []
        self.feedback_on = False
        self.started = False

    async def handle(self, task: ToolTask) -> None:
        if task.tool == "boom":
            raise RuntimeError("boom")
        if task.tool == "permanent":
            raise PermanentError("cannot be done")
        if task.tool == "undeclared":
            await self.bus.publish(task, self.bus.topics.answers)

        async def compute() -> TaskResult:
            self.computed.append(task.task_id)
            return TaskResult(**task.child_fields(), task_id=task.task_id, category=task.tool, content=task.tool)

        result, _ = await self.outcomes.once(
            f"{task.response_id}:{task.task_id}", compute, message=task,
            cancelled=lambda: TaskResult(**task.child_fields(), task_id=task.task_id, category=task.tool,
                                         error="cancelled"),
            expired=lambda: TaskResult(**task.child_fields(), task_id=task.task_id, category=task.tool,
                                       error="late"))
        await self.bus.publish(result, self.bus.topics.results)

    async def on_feedback(self, feedback: Feedback) -> None:
        raise AssertionError("switched off by `when`: never subscribed")

    async def on_cancel(self, cancel: Cancel) -> None:
        self.cancelled.append(cancel.response_id)

    async def start(self) -> None:
        self.started = True


TOY = Stage(
    name="toy", settings=ToySettings, build=Toy, summary="tool tasks -> results",
    consumes=(Consumes("tasks_mcp", ToolTask, "handle"),
              Consumes("feedback", Feedback, "on_feedback", when=lambda toy: toy.feedback_on)),
    publishes=("results",), needs=("redis",),
    memo=MemoPolicy("toy:{namespace}:result", TaskResult, ttl="result_ttl_s"),
    cancel=CancelPolicy(handler="on_cancel"),
)


def _task(rid: str, tool: str = "echo", task_id: str = "t1", seconds: float = 30) -> ToolTask:
    return ToolTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(seconds), task_id=task_id, tool=tool)


def _toy(namespace: str, redis: Any) -> tuple[Any, Bus, dict[str, list[Any]]]:
    settings = ToySettings(topic_namespace=namespace)
    bus = Bus(settings)
    app = create_stage_app(TOY, settings, bus=bus, redis=redis, manage_broker=False)
    out: dict[str, list[Any]] = {"results": [], "deadletter": []}
    bus.broker.subscriber(bus.topics.results)(lambda m: out["results"].append(TaskResult.model_validate(m)))
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: out["deadletter"].append(DeadLetter.model_validate(m)))
    return app, bus, out


@pytest.mark.infra  # real stores
async def test_a_redelivered_message_republishes_the_stored_outcome(redis, namespace: str) -> None:
    app, bus, out = _toy(namespace, redis)
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_task(f"r-{namespace}"), bus.topics.tasks_mcp)
        await bus.publish(_task(f"r-{namespace}"), bus.topics.tasks_mcp)
    assert app.state.toy.computed == ["t1"]
    assert [r.content for r in out["results"]] == ["echo", "echo"]
    assert await redis.exists(f"toy:{namespace}:result:r-{namespace}:t1")


@pytest.mark.infra  # real stores
async def test_bad_payloads_and_failing_handlers_are_dead_lettered_with_the_reason(redis, namespace: str) -> None:
    _, bus, out = _toy(namespace, redis)
    async with TestKafkaBroker(bus.broker) as broker:
        await broker.publish(b"not json", bus.topics.tasks_mcp, key=b"r-bad")
        await bus.publish(_task("r-boom", tool="boom"), bus.topics.tasks_mcp)
        await bus.publish(_task("r-perm", tool="permanent"), bus.topics.tasks_mcp)
        await bus.publish(_task("r-undeclared", tool="undeclared"), bus.topics.tasks_mcp)
    letters = {d.response_id: d for d in out["deadletter"]}
    assert letters["r-bad"].error_type == "validation_error"
    assert letters["r-bad"].reason.startswith("invalid ToolTask:") and letters["r-bad"].payload == "not json"
    assert (letters["r-boom"].error_type, letters["r-boom"].reason) == ("RuntimeError", "RuntimeError: boom")
    assert letters["r-perm"].reason == "PermanentError: cannot be done"
    assert letters["r-undeclared"].reason == (
        f"UndeclaredTopic: stage toy does not declare that it publishes to {bus.topics.answers}")
    assert {d.consumer for d in letters.values()} == {"toy"} and out["results"] == []


@pytest.mark.infra  # real stores
async def test_a_cancelled_request_gets_the_cancelled_outcome(redis, namespace: str) -> None:
    app, bus, out = _toy(namespace, redis)
    rid = f"r-{namespace}"
    async with TestKafkaBroker(bus.broker):
        await bus.publish(Cancel(response_id=rid, tenant_id="t", deadline_at=deadline_in(30)), bus.topics.cancel)
        await bus.publish(_task(rid), bus.topics.tasks_mcp)
    assert app.state.toy.cancelled == [rid] and app.state.toy.computed == []
    assert [r.error for r in out["results"]] == ["cancelled"]


@pytest.mark.infra  # real stores
async def test_a_task_past_its_deadline_gets_the_expired_outcome_without_work(redis, namespace: str) -> None:
    app, bus, out = _toy(namespace, redis)
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_task(f"r-{namespace}", seconds=-1), bus.topics.tasks_mcp)
    assert app.state.toy.computed == [] and [r.error for r in out["results"]] == ["late"]


@pytest.mark.infra  # real stores
async def test_a_switched_off_subscription_is_not_made(redis, namespace: str) -> None:
    _, bus, _ = _toy(namespace, redis)
    async with TestKafkaBroker(bus.broker):
        await bus.publish(Feedback(response_id="r", tenant_id="t", deadline_at=deadline_in(30), rating=5),
                          bus.topics.feedback)  # on_feedback would raise; nobody consumes it
    subscribed = " ".join(str(t) for sub in bus.broker.subscribers for t in getattr(sub, "topics", ()))
    assert bus.topics.feedback not in subscribed and bus.topics.tasks_mcp in subscribed


@pytest.mark.infra  # real stores
async def test_the_app_serves_ready_and_its_asyncapi_document(redis, namespace: str) -> None:
    app, bus, _ = _toy(namespace, redis)
    async with TestKafkaBroker(bus.broker), app.router.lifespan_context(app):
        assert app.state.toy.started
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://toy") as client:
            ready = (await client.get("/ready")).json()
            document = (await client.get("/asyncapi")).json()
    assert ready["status"] == "ready" and ready["checks"] == ["kafka", "redis"]
    channels = document["channels"]
    assert channels["toy:tasks_mcp"]["address"] == bus.topics.tasks_mcp
    assert channels["toy:cancel"]["address"] == bus.topics.cancel
    assert "toy:results:publish" in channels and "toy:feedback" not in channels
    assert {"ToolTask", "TaskResult", "Cancel"} <= set(document["components"]["schemas"])


def test_a_declaration_names_only_known_topics_and_keeps_memo_in_redis() -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        Consumes("tasks.expert", ToolTask, "handle")
    with pytest.raises(ValueError, match="unknown published topics"):
        Stage(name="x", settings=ToySettings, build=Toy, summary="", consumes=(), publishes=("result",))
    with pytest.raises(ValueError, match="Redis"):
        Stage(name="x", settings=ToySettings, build=Toy, summary="", consumes=(), publishes=(), needs=(),
              cancel=CancelPolicy())


class Recorder:
    """Every topic, raw: what a lineage or audit recorder declares."""

    def __init__(self, res: Resources) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def record(self, message: Any) -> None:
        if message.body == b"fail":
            raise RuntimeError("cannot record")
        self.seen.append((message.raw_message.topic, message.body))


RECORDER = Stage(name="recorder", settings=ToySettings, build=Recorder, summary="every topic, raw",
                 consumes=(Consumes(EVERY_TOPIC, None, "record"),), publishes=(), needs=())


async def test_a_stage_may_read_every_topic_raw(namespace: str) -> None:
    settings = ToySettings(topic_namespace=namespace, service_name="recorder")
    bus = Bus(settings)
    app = create_stage_app(RECORDER, settings, bus=bus, manage_broker=False)
    async with TestKafkaBroker(bus.broker) as broker:
        await broker.publish(b"not json", bus.topics.answers, key=b"r")
        await bus.publish(_task("r"), bus.topics.tasks_mcp)
    seen = app.state.recorder.seen
    assert [topic for topic, _ in seen] == [bus.topics.answers, bus.topics.tasks_mcp]
    assert seen[0][1] == b"not json" and ToolTask.model_validate_json(seen[1][1]).tool == "echo"


async def test_a_failing_dead_letter_record_is_not_dead_lettered_again(namespace: str) -> None:
    settings = ToySettings(topic_namespace=namespace, service_name="recorder")
    bus = Bus(settings)
    create_stage_app(RECORDER, settings, bus=bus, manage_broker=False)
    letters: list[bytes] = []
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: letters.append(m))
    async with TestKafkaBroker(bus.broker) as broker:
        await broker.publish(b"fail", bus.topics.answers, key=b"r1")
        await broker.publish(b"fail", bus.topics.deadletter, key=b"r2")
    sources = [DeadLetter.model_validate(m).source_topic for m in letters if isinstance(m, dict)]
    assert sources == [bus.topics.answers]
