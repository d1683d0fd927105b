"""OpenTelemetry: one tracer provider per process; context travels through Kafka headers."""

from __future__ import annotations

import logging

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from moe_core.contracts.envelope import TraceContext

log = logging.getLogger(__name__)


_provider: TracerProvider | None = None


def configure_tracing(service: str, otlp_endpoint: str = "") -> TracerProvider:
    """Install the process's tracer provider once (tests create many apps in one process)."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        except ImportError:
            log.warning("OTLP endpoint set but opentelemetry-exporter-otlp is not installed")
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def current_trace_context() -> TraceContext:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return TraceContext(traceparent=carrier.get("traceparent"), tracestate=carrier.get("tracestate"))
