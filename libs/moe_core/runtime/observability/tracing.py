"""OpenTelemetry: one tracer provider per process; context travels through Kafka headers.

With an OTLP endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT), spans are exported over OTLP/gRPC, the
protocol every collector listens on (port 4317). The gRPC exporter is the one already installed with
the fleet's dependencies; an OTLP/HTTP endpoint (port 4318) is not supported and is refused loudly.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from moe_core.contracts.envelope import TraceContext
from moe_core.runtime.observability.sampling import FleetSampler

log = logging.getLogger(__name__)
# Export promptly: a request's spans should reach the collector while someone is looking at it.
EXPORT_DELAY_MS = 1000

_provider: TracerProvider | None = None


def otlp_exporter(endpoint: str) -> OTLPSpanExporter:
    """An OTLP/gRPC span exporter for `http://host:4317` (plaintext) or `https://host:4317` (TLS)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"OTEL_EXPORTER_OTLP_ENDPOINT must be http(s)://host:port, got {endpoint!r}")
    if parts.path.rstrip("/").endswith("/v1/traces"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_ENDPOINT {endpoint!r} is an OTLP/HTTP path: give the gRPC "
                         "endpoint (http://collector:4317)")
    return OTLPSpanExporter(endpoint=f"{parts.hostname}:{parts.port or 4317}", insecure=parts.scheme == "http")


def configure_tracing(service: str, otlp_endpoint: str = "", sample_ratio: float = 1.0) -> TracerProvider:
    """Install the process's tracer provider once (tests create many apps in one process), sampling
    `sample_ratio` of new traces (moe_core.runtime.observability.sampling: errors and audit topics always)."""
    global _provider
    if _provider is not None:
        return _provider
    # shutdown_on_exit (the default) flushes the last spans when the service stops.
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=FleetSampler(sample_ratio))
    if otlp_endpoint:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(otlp_endpoint),
                                                       schedule_delay_millis=EXPORT_DELAY_MS))
        log.info("tracing: exporting spans of %s over OTLP/gRPC to %s", service, otlp_endpoint)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def current_trace_context() -> TraceContext:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return TraceContext(traceparent=carrier.get("traceparent"), tracestate=carrier.get("tracestate"))
