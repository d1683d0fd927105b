"""Logging with response_id, Prometheus metrics and OpenTelemetry tracing, set up once here."""

from moe_core.runtime.observability.logging import bind_response_id, configure_logging, current_response_id
from moe_core.runtime.observability.metrics import REGISTRY, metrics_response
from moe_core.runtime.observability.tracing import configure_tracing, current_trace_context

__all__ = [
    "REGISTRY",
    "bind_response_id",
    "configure_logging",
    "configure_tracing",
    "current_response_id",
    "current_trace_context",
    "metrics_response",
]
