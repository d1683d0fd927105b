"""A handler's failure is on the trace whether or not the trace was sampled (moe_core.runtime.observability.errors), and
the bus's tracing middleware continues the trace of the record it consumes
(moe_core.runtime.observability.kafka_tracing)."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from moe_core.contracts import DeadLetter, ToolTask, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability import configure_tracing
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import stage_router
from moe_core.stage.spec import Consumes, Stage

pytestmark = pytest.mark.unit
STAGE = Stage(name="tracer-toy", settings=FleetSettings, build=lambda res: None, summary="fails on purpose",
              consumes=(Consumes("tasks_mcp", ToolTask, "handle"),), publishes=(), needs=())


async def _fail(task: ToolTask) -> None:
    raise RuntimeError(f"boom {task.task_id}")


@pytest.mark.parametrize("sampled", [True, False])
async def test_a_failing_handler_leaves_its_exception_on_a_recorded_span(sampled: bool) -> None:
    settings = FleetSettings(service_name="tracer-toy", topic_namespace=f"trace{int(sampled)}")
    exporter = InMemorySpanExporter()
    configure_tracing("tracer-toy").add_span_processor(SimpleSpanProcessor(exporter))
    bus = Bus(settings)
    router, _ = stage_router(STAGE, settings, bus, {"handle": _fail})
    bus.broker.include_router(router)
    letters: list[Any] = []
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: letters.append(DeadLetter.model_validate(m)))
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    flags = "01" if sampled else "00"  # the producer's decision, carried by the record
    rid = f"r-{flags}"
    upstream = propagate.extract({"traceparent": f"00-{trace_id}-b7ad6b7169203331-{flags}"})
    async with TestKafkaBroker(bus.broker) as broker:  # published within the upstream span's trace
        task = ToolTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1", tool="x")
        token = otel_context.attach(upstream)
        try:
            await broker.publish(task.model_dump_json().encode(), bus.topics.tasks_mcp, key=rid.encode())
        finally:
            otel_context.detach(token)
    assert [d.reason for d in letters] == ["RuntimeError: boom t1"]
    spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    failed = [s for s in spans if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1, [(s.name, s.status.status_code) for s in spans]
    [span] = failed
    assert span.attributes is not None and span.attributes["messaging.kafka.message.key"] == rid
    assert [(e.attributes or {}).get("exception.message") for e in span.events if e.name == "exception"] == ["boom t1"]
    if sampled:  # the consumer span itself, child of the publish span (in the record's header), child of upstream
        by_id = {s.context.span_id: s for s in spans}
        assert span.name == f"{bus.topics.tasks_mcp} process" and span.parent is not None
        publish = by_id[span.parent.span_id]
        assert publish.name == f"{bus.topics.tasks_mcp} publish" and publish.parent is not None
        assert format(publish.parent.span_id, "016x") == "b7ad6b7169203331"
        assert any(s.name == f"{bus.topics.deadletter} publish" for s in spans)
    else:  # a kept span of its own: nothing else of the unsampled trace but the dead letter is recorded
        assert span.name == f"{bus.topics.tasks_mcp} failed"
        assert {s.name for s in spans} == {span.name, f"{bus.topics.deadletter} publish",
                                           f"{bus.topics.deadletter} process"}
