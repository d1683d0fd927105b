"""A real OTLP/gRPC trace receiver for tests: the collector's wire protocol (opentelemetry-proto's
TraceService), keeping every span it receives in memory."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int  # opentelemetry.proto SpanKind: 4 producer, 5 consumer
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, str]


def _value(v: Any) -> str:
    kind = v.WhichOneof("value")
    if kind == "bytes_value":
        return bytes(v.bytes_value).decode("utf-8", errors="replace")
    return str(getattr(v, kind)) if kind else ""


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpReceiver) -> None:
        self.sink = sink

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,  # the gRPC method name
               context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        spans = []
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attrs.get("service.name", "?")
            for scope_spans in resource_spans.scope_spans:
                spans += [Span(service, s.name, s.kind, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                               {a.key: _value(a.value) for a in s.attributes})
                          for s in scope_spans.spans]
        self.sink.add(spans, str(request))  # and the whole export as text: events, resources, links too
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """Start with start(); `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT should say."""

    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._exports: list[str] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=1).wait()

    def add(self, spans: list[Span], export: str = "") -> None:
        with self._lock:
            self._spans += spans
            self._exports.append(export)

    def exported(self) -> str:
        """Every export received so far, in protobuf's text format (every field of every span, its events and
        links, and the resources' attributes)."""
        with self._lock:
            return "\n".join(self._exports)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)
