"""Which spans are recorded: parent-based ratio sampling that keeps every error and every audit-relevant span.

- A trace starts sampled with probability MOE_TRACE_SAMPLE_RATIO, decided from its trace id, so every service
  decides the same way for the same trace; a span with a parent follows the parent's decision (the W3C
  `traceparent` flag carried through Kafka headers), so a trace is kept whole or not at all.
- Always kept, whatever the ratio and the parent say: spans the runtime marks `moe.keep` (a handler's failure:
  moe_core.runtime.observability.errors) and spans of the audit-relevant topics (dead letters, cancellations).
- An unsampled span is not recorded, but its context is real: the trace id still travels in every header and
  every envelope (`Envelope.trace`), so log lines and the audit record of a request name its trace either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

KEEP = "moe.keep"  # span attribute: record this span whatever the sampling decision of its trace
AUDIT_TOPICS = (".deadletter.", ".cancel.")  # spans on these topics are always recorded


class FleetSampler(Sampler):
    def __init__(self, ratio: float, audit_topics: Sequence[str] = AUDIT_TOPICS) -> None:
        self.ratio = ratio
        self.audit_topics = tuple(audit_topics)
        self._sampled = ParentBased(TraceIdRatioBased(ratio))

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: TraceState | None = None) -> SamplingResult:
        if (attributes and attributes.get(KEEP)) or any(topic in name for topic in self.audit_topics):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return self._sampled.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"FleetSampler{{ratio={self.ratio}, always={','.join(self.audit_topics)},{KEEP}}}"
