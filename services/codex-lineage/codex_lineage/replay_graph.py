"""`replay rebuild graph`: re-apply a range of the ingest, feedback and audit topics to a scratch namespace of
the knowledge graph and compare it with the live graph for what those events produced.

The triples come from graph-ingest's `ingested` audit events (what it wrote, after its conflict and
blast-radius decisions; the model is not asked again) and the gateway's `quarantine_approved` events (a held
triple an admin released), their provenance from the ingest events, the verified/flagged marks from the
feedback events (relation ids mapped to the scratch namespace). The scratch namespace is a tenant of its own
per live tenant (`~rebuild-<run>~<tenant>`): the live tenants' nodes and relations are only read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from codex_lineage.reader import read_records
from codex_lineage.replay_graph_dump import drop_tenant, dump
from codex_lineage.settings import LineageSettings
from moe_core.audit.records import AuditRecord
from moe_core.contracts import Feedback, IngestEvent, Topics
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.feedback import apply_feedback
from moe_core.knowledge.graph.names import entity_uid, relation_id
from moe_core.knowledge.graph.settings import GraphSettings
from moe_core.knowledge.graph.synthesis import write_synthesis

SCRATCH_ENTITIES = "MATCH (e:Entity {tenant: $tenant}) RETURN e.uid AS uid, e.key AS key"
SCRATCH_RELATIONS = """
MATCH (a:Entity)-[r:REL {tenant: $tenant}]->(b:Entity)
RETURN r.id AS id, a.uid AS subject, r.type AS type, b.uid AS object
"""


@dataclass
class Rebuild:
    db: GraphDB
    store: GraphStore
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    scratch: dict[str, str] = field(default_factory=dict)  # live tenant -> scratch tenant
    ingests: dict[str, IngestEvent] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)  # answer -> the domain graph-ingest wrote it under
    approvals: int = 0
    origins: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def tenant(self, live: str) -> str:
        return self.scratch.setdefault(live, f"~rebuild-{self.run}~{live}")

    async def ingested(self, record: AuditRecord) -> None:
        """Write what graph-ingest recorded it wrote for one answer."""
        details, rid = record.payload.get("details") or {}, record.response_id
        event = self.ingests.get(rid)
        if "triples" not in details:
            self.notes.append(f"{rid}: its audit event does not name the triples (recorded by an older version)")
            return
        if event is None:
            self.notes.append(f"{rid}: its ingest event is not in the range (provenance unknown)")
            return
        self.origins.add(rid)
        self.domains[rid] = str(details.get("domain") or "general")
        prov = Provenance(tenant=self.tenant(event.tenant_id), source="extracted", domain=self.domains[rid], origin=rid,
                          expert=event.source_expert, model=event.source_model)
        uids: list[str] = []
        for item in details["triples"]:
            written = await self.store.write_triple(Triple.model_validate(item), prov)
            uids += [written.subject_uid, written.object_uid]
        await write_synthesis(self.db, prov, event, uids)

    async def approved(self, record: AuditRecord) -> None:
        """Write a quarantined triple an admin approved, as Quarantine.decide does (origin `quarantine:<id>`)."""
        rid, qid = record.response_id, str(record.payload.get("subject"))
        event, triple = self.ingests.get(rid), (record.payload.get("details") or {}).get("triple")
        if event is None or rid not in self.domains or not triple:
            self.notes.append(f"quarantine {qid}: its answer's ingest and ingested events are not in the range")
            return
        origin = f"quarantine:{qid}"
        self.origins.add(origin)
        self.approvals += 1
        prov = Provenance(tenant=self.tenant(event.tenant_id), source="extracted", domain=self.domains[rid],
                          origin=origin, expert=event.source_expert, model=event.source_model)
        await self.store.write_triple(Triple.model_validate(triple), prov)

    async def feedback(self, record: AuditRecord) -> None:
        """Apply a rating to the scratch copies of the live relations it names."""
        fb = Feedback.model_validate(record.payload)
        if fb.tenant_id not in self.scratch or not fb.graph_refs:
            return
        scratch = self.scratch[fb.tenant_id]
        ids = await self._scratch_ids(fb.tenant_id, scratch)
        mapped = [ids[ref] for ref in fb.graph_refs if ref in ids]
        origin = f"{fb.response_id}:{fb.rating}:{fb.created_at.isoformat()}"
        await apply_feedback(self.db, self.store.policy, scratch, mapped, fb.rating, origin)

    async def _scratch_ids(self, live: str, scratch: str) -> dict[str, str]:
        """live relation id -> the scratch relation that stands for it (ids are derived from tenant and keys)."""
        uids = {r["uid"]: entity_uid(live, r["key"]) for r in await self.db.read(SCRATCH_ENTITIES, tenant=scratch)}
        return {relation_id(live, uids.get(r["subject"], r["subject"]), r["type"], uids.get(r["object"], r["object"])):
                r["id"] for r in await self.db.read(SCRATCH_RELATIONS, tenant=scratch)}


async def replay_into(rebuild: Rebuild, topics: Topics, records: list[AuditRecord]) -> None:
    """Apply the records in broker-time order: an answer's triples, then the ratings that name them."""
    for record in records:
        if record.topic == topics.ingest:
            event = IngestEvent.model_validate(record.payload)
            if event.tenant_id != SHARED_TENANT:
                rebuild.ingests[event.response_id] = event
    for record in records:
        if (record.topic == topics.audit and record.payload.get("actor") == "graph-ingest"
                and record.payload.get("action") == "ingested"):
            await rebuild.ingested(record)
        elif record.topic == topics.audit and record.payload.get("action") == "quarantine_approved":
            await rebuild.approved(record)
        elif record.topic == topics.feedback:
            await rebuild.feedback(record)


async def rebuild_graph(settings: LineageSettings, since: datetime, until: datetime, keep: bool = False) -> int:
    """Print the comparison; 0 when the rebuilt graph equals the live one for the range's events, 1 otherwise."""
    graph = GraphSettings()
    topics = Topics.for_namespace(settings.topic_namespace)
    wanted = {topics.ingest, topics.feedback, topics.audit}
    records = [r async for r in read_records(settings.kafka_bootstrap, topics, since, until) if r.topic in wanted]
    records.sort(key=lambda r: (r.broker_ts, r.topic, r.partition, r.offset))
    db = GraphDB.from_settings(graph)
    rebuild = Rebuild(db, GraphStore(db, graph.trust_policy()))
    try:
        await replay_into(rebuild, topics, records)
        live_tenants = {t: t for t in rebuild.scratch}
        theirs = await dump(db, live_tenants, rebuild.origins)
        mine = await dump(db, {s: t for t, s in rebuild.scratch.items()}, rebuild.origins)
    finally:
        if not keep:
            for scratch in rebuild.scratch.values():
                await drop_tenant(db, scratch)
        await db.close()
    print(f"rebuilt from {len(records)} records ({len(rebuild.domains)} answers learned, "
          f"{rebuild.approvals} quarantine approvals, "
          f"{len(rebuild.scratch)} tenants) into {', '.join(sorted(rebuild.scratch.values())) or 'nothing'}"
          f"{' (kept)' if keep else ''}: {len(mine)} facts; live graph: {len(theirs)}")
    for note in rebuild.notes[:20]:
        print(f"  not rebuilt: {note}")
    only_live, only_rebuilt = theirs - mine, mine - theirs
    for line in sorted(only_live)[:50]:
        print(f"  only in the live graph: {line}")
    for line in sorted(only_rebuilt)[:50]:
        print(f"  only in the rebuild: {line}")
    equal = not (only_live or only_rebuilt)
    print(f"EQUAL: the live graph holds the {len(mine)} facts these records wrote, as they wrote them (imports, "
          "admin edits and changes made in Neo4j outside the fleet are not compared)" if equal else
          f"DIFFERENT: {len(only_live)} only live, {len(only_rebuilt)} only rebuilt")
    return 0 if equal else 1
