"""Synthesis insights of the judge become :Synthesis nodes linked (ABOUT) to the entities they concern."""

from __future__ import annotations

import time

from moe_core.graph.driver import GraphDB
from moe_core.graph.model import Provenance
from moe_core.graph.names import synthesis_id

MAX_INSIGHT_CHARS = 4000

WRITE_SYNTHESIS = """
MERGE (s:Synthesis {id: $id})
ON CREATE SET s.text = $text, s.question = $question, s.tenant = $tenant, s.domain = $domain,
              s.response_id = $origin, s.expert = $expert, s.model = $model, s.created_at = $now
WITH s
UNWIND $entities AS uid
MATCH (e:Entity {uid: uid})
MERGE (s)-[:ABOUT]->(e)
"""


async def write_synthesis(db: GraphDB, prov: Provenance, question: str, insight: str, entity_uids: list[str]) -> str:
    sid = synthesis_id(prov.tenant, prov.origin)
    await db.write(WRITE_SYNTHESIS, id=sid, text=insight.strip()[:MAX_INSIGHT_CHARS], question=question[:1000],
                   tenant=prov.tenant, domain=prov.domain, origin=prov.origin, expert=prov.expert, model=prov.model,
                   now=time.time(), entities=sorted(set(entity_uids)))
    return sid
