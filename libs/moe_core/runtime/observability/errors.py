"""A handler's failure on the trace, sampled or not (moe_core.runtime.observability.sampling keeps every error).

The stage runtime handles a failure inside the consumer span (dead letter, redelivery), so the span would
otherwise end without a sign of it. A recorded consumer span gets the exception and the error status; in a
trace that was not sampled, a span of its own carries them (marked `moe.keep`, so the sampler records it),
with the trace id and the consumer span's id as its parent: the failure is findable by its trace id."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AnyValue

from moe_core.runtime.observability.sampling import KEEP

_tracer = None


def record_failure(topic: str, response_id: str, exc: BaseException) -> None:
    span = trace.get_current_span()
    if not span.is_recording():
        global _tracer
        _tracer = _tracer or trace.get_tracer("moe_core.stage.runtime")
        attributes: dict[str, AnyValue] = {KEEP: True, "messaging.destination.name": topic,
                                           "messaging.kafka.message.key": response_id,
                                           "error.type": type(exc).__name__}
        with _tracer.start_as_current_span(f"{topic} failed", kind=SpanKind.CONSUMER, attributes=attributes,
                                           record_exception=False, set_status_on_exception=False) as span:
            _mark(span, exc)
        return
    _mark(span, exc)


def _mark(span: trace.Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
