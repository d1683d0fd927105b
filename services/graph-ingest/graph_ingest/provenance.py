"""Where a learned fact came from: the answer graph-ingest learned it from, or the text a key sent to
POST /v1/memory/ingest (the control plane's `mem-…` event, `source_expert` "memory-api"). graph-ingest names it in
its `ingested` audit event (`details.learned_from`: kind, response_id, the submitting principal, expert and model;
codex-lineage's fact lineage follows it from the signed record) and keeps it on every relation it wrote, in
`learned_from` (`answer:<response id>` or `memory:<event id>`, the last MAX_LEARNED_FROM origins)."""

from __future__ import annotations

from typing import Any

from neo4j import AsyncManagedTransaction

from moe_core.contracts import IngestEvent
from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.driver import tx_data

MEMORY_API = "memory-api"
MEMORY_PREFIX = "mem-"
MAX_LEARNED_FROM = 20

LEARNED_FROM = """
UNWIND $ids AS id
MATCH ()-[r:REL {id: id}]->()
WHERE r.tenant = $tenant
SET r.learned_from = CASE WHEN $origin IN coalesce(r.learned_from, []) THEN r.learned_from
                          ELSE (coalesce(r.learned_from, []) + [$origin])[-$keep..] END
"""


def learned_from(event: IngestEvent) -> dict[str, Any]:
    memory = event.source_expert == MEMORY_API or event.response_id.startswith(MEMORY_PREFIX)
    return {"kind": "memory_ingest" if memory else "answer", "response_id": event.response_id,
            "submitted_by": event.submitted_by, "source_expert": event.source_expert,
            "source_model": event.source_model}


def origin_label(origin: dict[str, Any]) -> str:
    return f"{'memory' if origin['kind'] == 'memory_ingest' else 'answer'}:{origin['response_id']}"


async def keep_learned_from(db: GraphDB, tenant: str, relation_ids: list[str], origin: dict[str, Any]) -> None:
    """Name the origin on the relations (idempotent: a redelivered answer adds nothing)."""
    if relation_ids:
        await db.write(LEARNED_FROM, ids=relation_ids, tenant=tenant, origin=origin_label(origin),
                       keep=MAX_LEARNED_FROM)


async def keep_learned_from_in(tx: AsyncManagedTransaction, tenant: str, relation_ids: list[str],
                               origin: dict[str, Any]) -> None:
    """keep_learned_from inside an open transaction."""
    if relation_ids:
        await tx_data(tx, LEARNED_FROM, ids=relation_ids, tenant=tenant, origin=origin_label(origin),
                      keep=MAX_LEARNED_FROM)
