"""The judge's synthesis insights become :Synthesis nodes (summary, insight_type, the entities it names) linked
(ABOUT) to the entities the answer's triples wrote and to the shared (ontology) entities the insight names. Names
are matched in the shared tenant only: a link to an entity of an earlier answer would make the node depend on
history that an audit replay of a range does not have (codex-lineage's replay writes the same node)."""

from __future__ import annotations

import time
from typing import Any

from neo4j import AsyncManagedTransaction

from moe_core.contracts import IngestEvent
from moe_core.knowledge.graph.driver import GraphDB, tx_data
from moe_core.knowledge.graph.model import Provenance
from moe_core.knowledge.graph.names import normalize, synthesis_id
from moe_core.knowledge.graph.vocab import SHARED_TENANT

MAX_INSIGHT_CHARS = 4000

WRITE_SYNTHESIS = """
MERGE (s:Synthesis {id: $id})
ON CREATE SET s.text = $text, s.question = $question, s.tenant = $tenant, s.domain = $domain,
              s.response_id = $origin, s.expert = $expert, s.model = $model, s.created_at = $now,
              s.insight_type = $insight_type, s.entities = $names
WITH s
CALL (s) {
  UNWIND $entities AS uid
  MATCH (e:Entity {uid: uid})
  MERGE (s)-[:ABOUT]->(e)
}
CALL (s) {
  UNWIND $keys AS key
  MATCH (e:Entity {key: key, tenant: $shared})
  MERGE (s)-[:ABOUT]->(e)
}
"""


def insight_of(event: IngestEvent) -> tuple[str, str, list[str]] | None:
    """(summary, insight_type, named entities) of an answer's insight: the judge's block, else the text alone
    (an event of an older merger); None without one."""
    if event.synthesis is not None:
        return event.synthesis.summary, event.synthesis.insight_type, list(event.synthesis.entities)
    if event.synthesis_insight and event.synthesis_insight.strip():
        return event.synthesis_insight, "synthesis", []
    return None


async def write_synthesis(db: GraphDB, prov: Provenance, event: IngestEvent, entity_uids: list[str]) -> str | None:
    """The event's insight as its answer's :Synthesis node (one per answer: a redelivery changes nothing)."""
    found = _synthesis(prov, event, entity_uids)
    if found is None:
        return None
    await db.write(WRITE_SYNTHESIS, **found)
    return str(found["id"])


async def write_synthesis_in(tx: AsyncManagedTransaction, prov: Provenance, event: IngestEvent,
                             entity_uids: list[str]) -> str | None:
    """write_synthesis inside an open transaction (graph-ingest writes an answer's triples and it in one)."""
    found = _synthesis(prov, event, entity_uids)
    if found is None:
        return None
    await tx_data(tx, WRITE_SYNTHESIS, **found)
    return str(found["id"])


def _synthesis(prov: Provenance, event: IngestEvent, entity_uids: list[str]) -> dict[str, Any] | None:
    """The parameters of the event's :Synthesis node (None: it has no insight)."""
    found = insight_of(event)
    if found is None:
        return None
    text, insight_type, names = found
    return {"id": synthesis_id(prov.tenant, prov.origin), "text": text.strip()[:MAX_INSIGHT_CHARS],
            "question": event.question[:1000], "tenant": prov.tenant, "domain": prov.domain, "origin": prov.origin,
            "expert": prov.expert, "model": prov.model, "now": time.time(), "insight_type": insight_type,
            "names": names, "entities": sorted(set(entity_uids)),
            "keys": sorted({normalize(n) for n in names} - {""}), "shared": SHARED_TENANT}
