"""The bus's spans: one CONSUMER span per message handled (`<topic> process`) and one PRODUCER span per message
published (`<topic> publish`), the W3C trace context carried in the record's headers, the semantic-convention
attributes the fleet's dashboards and tests read (messaging.system, messaging.destination.name,
messaging.kafka.message.key, partition, offset).

It replaces FastStream's KafkaTelemetryMiddleware, which measured about a third of the runtime's CPU per message
(bench.message_costs, docs/performance.md "Per-message costs"): per message it made a further "create" span
whenever the current span was not recorded, extracted the headers twice (trace and baggage), built two
attribute sets and recorded OpenTelemetry metrics next to the Prometheus ones. Here an unsampled message costs
the header's extraction, one non-recording span and the injection (moe_core.runtime.observability.sampling decides)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faststream import BaseMiddleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def bus_tracer(tracer_provider: TracerProvider) -> Tracer:
    return tracer_provider.get_tracer("moe_core.runtime.bus")


def kafka_tracing(tracer_provider: TracerProvider) -> type[BaseMiddleware]:
    """The broker middleware (a class: FastStream makes one per message) tracing with `tracer_provider`."""
    tracer = bus_tracer(tracer_provider)

    class KafkaTracing(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            raw = msg.raw_message
            topic = getattr(raw, "topic", None)
            if not isinstance(topic, str):  # a batch subscriber (the fleet has none): not traced
                return await call_next(msg)
            parent = _PROPAGATOR.extract(msg.headers or {})
            attributes: dict[str, Any] = {"messaging.system": "kafka", "messaging.destination.name": topic,
                                          "messaging.operation": "process",
                                          "messaging.kafka.destination.partition": raw.partition,
                                          "messaging.kafka.message.offset": raw.offset}
            if raw.key is not None:
                attributes["messaging.kafka.message.key"] = _text(raw.key)
            span = tracer.start_span(f"{topic} process", context=parent, kind=SpanKind.CONSUMER,
                                     attributes=attributes)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            try:
                return await call_next(msg)
            except Exception as exc:
                _failed(span, exc)
                raise
            finally:
                otel_context.detach(token)
                span.end()

        async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
            headers = cmd.headers if cmd.headers is not None else {}
            with producer_span(tracer, cmd.destination, cmd.key, headers):
                cmd.headers = headers
                return await call_next(cmd)

    return KafkaTracing


@contextmanager
def producer_span(tracer: Tracer, topic: str, key: Any, headers: dict[str, str]) -> Iterator[None]:
    """The PRODUCER span `<topic> publish` around a publish, its context injected into `headers` (the W3C
    traceparent the consumer continues); a failure is put on it. Used by the broker's middleware and by the Bus,
    which hands its records to the Kafka producer itself (moe_core.runtime.bus.Bus.send_record)."""
    attributes: dict[str, Any] = {"messaging.system": "kafka", "messaging.destination.name": topic,
                                  "messaging.operation": "publish"}
    if key is not None:
        attributes["messaging.kafka.message.key"] = _text(key)
    span = tracer.start_span(f"{topic} publish", kind=SpanKind.PRODUCER, attributes=attributes)
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
    try:
        yield
    except Exception as exc:
        _failed(span, exc)
        raise
    finally:
        span.end()


def _text(key: Any) -> str:
    return key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)


def _failed(span: trace.Span, exc: BaseException) -> None:
    status = getattr(span, "status", None)  # the runtime may have recorded it already (errors.record_failure)
    if span.is_recording() and getattr(status, "status_code", None) != StatusCode.ERROR:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
