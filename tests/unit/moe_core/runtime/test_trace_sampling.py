"""Trace sampling (moe_core.runtime.observability.sampling): a trace is recorded whole or not at all, decided once from
its trace id; failures and the audit-relevant topics are recorded whatever the decision."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context

from moe_core.runtime.observability.sampling import KEEP, FleetSampler

pytestmark = pytest.mark.unit


def _tracer(ratio: float) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(sampler=FleetSampler(ratio))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_ratio_zero_records_nothing_but_failures_and_audit_topics() -> None:
    provider, exporter = _tracer(0.0)
    tracer = provider.get_tracer("t")
    root = tracer.start_span("moe.requests.v1 publish")
    child = tracer.start_span("moe.plans.v1 process", context=set_span_in_context(root))
    assert not root.is_recording() and not child.is_recording()
    assert root.get_span_context().is_valid, "an unsampled span still has a trace id to propagate"
    failed = tracer.start_span("moe.plans.v1 failed", context=set_span_in_context(child), attributes={KEEP: True})
    letter = tracer.start_span("moe.deadletter.v1 publish", context=set_span_in_context(child))
    cancel = tracer.start_span("moe.cancel.v1 process")
    for span in (child, root, failed, letter, cancel):
        span.end()
    kept = exporter.get_finished_spans()
    assert sorted(s.name for s in kept) == ["moe.cancel.v1 process", "moe.deadletter.v1 publish", "moe.plans.v1 failed"]
    by_name = {s.name: s for s in kept}
    assert by_name["moe.plans.v1 failed"].context.trace_id == root.get_span_context().trace_id
    parent = by_name["moe.plans.v1 failed"].parent
    assert parent is not None and parent.span_id == child.get_span_context().span_id


def test_a_sampled_trace_is_recorded_whole() -> None:
    provider, exporter = _tracer(1.0)
    tracer = provider.get_tracer("t")
    root = tracer.start_span("moe.requests.v1 publish")
    child = tracer.start_span("moe.requests.v1 process", context=set_span_in_context(root))
    child.end()
    root.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["moe.requests.v1 process", "moe.requests.v1 publish"]


def test_the_decision_follows_the_parent_not_the_ratio() -> None:
    unsampled, _ = _tracer(0.0)
    sampled, exporter = _tracer(1.0)
    parent = unsampled.get_tracer("a").start_span("moe.requests.v1 publish")  # another service decided: no
    child = sampled.get_tracer("b").start_span("moe.requests.v1 process", context=set_span_in_context(parent))
    assert not child.is_recording()
    recorded_parent = sampled.get_tracer("b").start_span("moe.plans.v1 publish")
    low = unsampled.get_tracer("a").start_span("moe.plans.v1 process", context=set_span_in_context(recorded_parent))
    assert low.is_recording(), "a sampled parent's child is recorded whatever this process's ratio"
    for span in (child, low, recorded_parent, parent):
        span.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["moe.plans.v1 publish"]


def test_about_the_ratio_of_traces_is_recorded() -> None:
    provider, exporter = _tracer(0.25)
    tracer = provider.get_tracer("t")
    for _ in range(2000):
        tracer.start_span("moe.requests.v1 publish").end()
    assert 300 < len(exporter.get_finished_spans()) < 700
