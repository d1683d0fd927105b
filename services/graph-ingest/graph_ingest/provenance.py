"""Where a learned fact came from: the answer graph-ingest learned it from, or the text a key sent to
POST /v1/memory/ingest (the control plane's `mem-…` event, `source_expert` "memory-api"). graph-ingest names it in
its `ingested` audit event (`details.learned_from`: kind, response_id, the submitting principal, expert and model;
codex-lineage's fact lineage follows it from the signed record) and keeps it on every relation it wrote, in
`learned_from` (`answer:<response id>` or `memory:<event id>`, the last MAX_ASSERTED_BY origins: the statement that
asserts the relation sets it, Provenance.learned_from, moe_core.knowledge.graph.store)."""

from __future__ import annotations

from typing import Any

from moe_core.contracts import IngestEvent

MEMORY_API = "memory-api"
MEMORY_PREFIX = "mem-"


def learned_from(event: IngestEvent) -> dict[str, Any]:
    memory = event.source_expert == MEMORY_API or event.response_id.startswith(MEMORY_PREFIX)
    return {"kind": "memory_ingest" if memory else "answer", "response_id": event.response_id,
            "submitted_by": event.submitted_by, "source_expert": event.source_expert,
            "source_model": event.source_model}


def origin_label(origin: dict[str, Any]) -> str:
    return f"{'memory' if origin['kind'] == 'memory_ingest' else 'answer'}:{origin['response_id']}"
