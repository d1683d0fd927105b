"""Where the facts of an answer came from, and where an import's or a document's facts went, read from the signed
record only (the audit store; never the graph, which changes): an answer -> the graph-rag runs that used knowledge-
graph facts (their lineage's `moe_graph_facts` input facet) -> each fact -> the knowledge import that wrote it (its
`knowledge_import_applied` event lists the relation ids) -> the import's approvals (principals and times) and its
source document (id, digest, title), or -> the answer or memory-ingest event graph-ingest learned it from (its
`ingested` event lists the relation ids it wrote, with `learned_from`), or -> the quarantine entry that held it (a
protected domain, the write policy's refusal or a dense hub: graph-ingest's `quarantined` event, with why) and was
released by admins (the control plane's `quarantine_approval` events: principal, key, time, note; its
`quarantine_approved` event names the relation id the release wrote) -> the answer or memory-ingest event it was
learned from; and the other way, an import or a document -> the facts it wrote -> every answer whose lineage used one
of them, and an answer -> the quarantine entries of the triples learned from it -> the facts released. A tenant
document whose chunk a graph-rag run quoted directly (the facet's `documents`: chunk refs `<collection>/<document
id>:<n>`) leads to that run and its answer, both ways: document -> `quoted_by` -> run -> answer. Tenant-scoped: only
the given tenants' records are read.

The result is a graph: {"object": "lineage.graph", "root", "nodes": [{"id", "kind", "label", "data"}],
"edges": [{"source", "target", "relation"}]}, node ids `answer:<response id>`, `run:<run id>`, `fact:<relation
id>`, `import:<change set id>`, `approval:<change set id>:<principal>`, `document:<document id>`, `memory:<event
id>`; edges point the way the data flowed (document -> import -> fact -> run -> answer; document -> `quoted_by` ->
run; approval -> import; an answer or memory-ingest event -> `learned` -> fact)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moe_core.audit.store import AuditStore

APPLIED = "knowledge_import_applied"
MAX_FACTS = 500  # facts followed downstream from one import or document
MAX_ANSWERS = 1000

# (index audit_log_audit_actions: a tenant's audit events by action)
IMPORTS_OF_FACTS = """
SELECT l.response_id AS import_id, f.fact AS fact_id FROM audit_log l
CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(l.payload::jsonb -> 'details' -> 'relation_ids', '[]'))
     AS f(fact)
WHERE l.kind = 'record' AND l.message_type = 'AuditEvent' AND l.tenant_id = ANY($1::text[])
  AND (l.payload::jsonb ->> 'action') = 'knowledge_import_applied' AND f.fact = ANY($2::text[])
"""

# the ingest runs that wrote the facts (graph-ingest's `ingested` events), with where each learned them from
LEARNED_FACTS = """
SELECT l.response_id AS origin_id, f.fact AS fact_id, l.payload::jsonb -> 'details' -> 'learned_from' AS learned_from,
       coalesce(l.created_at, l.broker_ts) AS at
FROM audit_log l
CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(l.payload::jsonb -> 'details' -> 'relations', '[]'))
     AS f(fact)
WHERE l.kind = 'record' AND l.message_type = 'AuditEvent' AND l.tenant_id = ANY($1::text[])
  AND (l.payload::jsonb ->> 'action') = 'ingested' AND f.fact = ANY($2::text[])
ORDER BY l.seq
"""
MEMORY_PREFIX = "mem-"  # the control plane's POST /v1/memory/ingest events (older records have no learned_from)

# the quarantine releases that wrote the facts (the control plane's `quarantine_approved` events name the relation)
RELEASED_FACTS = """
SELECT DISTINCT l.response_id AS origin_id FROM audit_log l
WHERE l.kind = 'record' AND l.message_type = 'AuditEvent' AND l.tenant_id = ANY($1::text[])
  AND (l.payload::jsonb ->> 'action') = 'quarantine_approved'
  AND (l.payload::jsonb -> 'details' ->> 'relation_id') = ANY($2::text[])
ORDER BY 1
"""

# (index audit_log_rid) the quarantine record of the triples learned from one answer or memory-ingest event: the
# holds, approvals, releases and rejections (subject: the entry id), and graph-ingest's `ingested` event
QUARANTINE_OF_ORIGIN = """
SELECT l.payload, coalesce(l.created_at, l.broker_ts) AS at FROM audit_log l
WHERE l.response_id = $1 AND l.kind = 'record' AND l.message_type = 'AuditEvent' AND l.tenant_id = ANY($2::text[])
  AND (l.payload::jsonb ->> 'action') = ANY(ARRAY['quarantined', 'quarantine_approval', 'quarantine_approved',
                                                  'quarantine_rejected', 'ingested'])
ORDER BY l.rseq, l.seq
"""
QUARANTINE_ACTIONS = ("quarantined", "quarantine_approval", "quarantine_approved", "quarantine_rejected")

IMPORTS_OF_DOCUMENT = """
SELECT DISTINCT l.response_id AS import_id FROM audit_log l
WHERE l.kind = 'record' AND l.message_type = 'AuditEvent' AND l.tenant_id = ANY($1::text[])
  AND (l.payload::jsonb ->> 'action') = 'knowledge_import_applied'
  AND (l.payload::jsonb -> 'details' -> 'document' ->> 'id') = $2
ORDER BY 1
"""

IMPORT_EVENTS = """
SELECT l.payload, l.created_at, l.broker_ts FROM audit_log l
WHERE l.response_id = $1 AND l.kind = 'record' AND l.message_type = 'AuditEvent' AND l.tenant_id = ANY($2::text[])
ORDER BY l.rseq, l.seq
"""

# (index audit_log_lineage_inputs) the graph tasks whose lineage names the fact, in the given tenants
ANSWERS_OF_FACT = """
SELECT DISTINCT response_id, run_id, job_name FROM audit_log
WHERE kind = 'lineage' AND response_id IS NOT NULL AND tenant_id = ANY($2::text[])
  AND (body::jsonb -> 'inputs') @> $1::jsonb
ORDER BY response_id LIMIT 1000
"""

# (index audit_log_lineage_inputs: the runs whose facet names documents at all) the graph tasks whose lineage quotes a
# chunk of the document (chunk refs `<collection>/<document id>:<n>`), in the given tenants
ANSWERS_QUOTING_DOCUMENT = """
SELECT DISTINCT l.response_id, l.run_id, l.job_name FROM audit_log l
WHERE l.kind = 'lineage' AND l.response_id IS NOT NULL AND l.tenant_id = ANY($2::text[])
  AND (l.body::jsonb -> 'inputs') @> '[{"inputFacets": {"moe_graph_facts": {"documents": []}}}]'::jsonb
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(l.body::jsonb -> 'inputs') AS i(ds)
              CROSS JOIN LATERAL jsonb_array_elements_text(
                  coalesce(i.ds -> 'inputFacets' -> 'moe_graph_facts' -> 'documents', '[]')) AS d(ref)
              WHERE regexp_replace(d.ref, '^.*/|:[0-9]+$', '', 'g') = $1)
ORDER BY l.response_id LIMIT 1000
"""


def document_of(ref: str) -> str:
    """The document id of a quoted chunk ref (`<collection>/<document id>:<n>`)."""
    chunk = ref.rsplit("/", 1)[-1]
    head, _, n = chunk.rpartition(":")
    return head if head and n.isdigit() else chunk


@dataclass
class Graph:
    root: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str], str] = field(default_factory=dict)

    def node(self, nid: str, kind: str, label: str, **data: Any) -> str:
        known = self.nodes.setdefault(nid, {"id": nid, "kind": kind, "label": label, "data": {}})
        known["data"].update({k: v for k, v in data.items() if v is not None})
        return nid

    def edge(self, source: str, target: str, relation: str) -> None:
        self.edges.setdefault((source, target), relation)

    def as_dict(self) -> dict[str, Any]:
        return {"object": "lineage.graph", "root": self.root, "nodes": list(self.nodes.values()),
                "edges": [{"source": s, "target": t, "relation": r} for (s, t), r in self.edges.items()]}


def graph_runs(events: list[dict[str, Any]]) -> dict[str, tuple[str, list[str]]]:
    """run id -> (job, fact ids) of the stage runs whose lineage names knowledge-graph facts as an input."""
    runs: dict[str, tuple[str, list[str]]] = {}
    for event in events:
        for ds in event.get("inputs") or []:
            used = ((ds.get("inputFacets") or {}).get("moe_graph_facts") or {}).get("factIds") or []
            if used:
                rid = str(event["run"]["runId"])
                job, known = runs.get(rid, (str(event["job"]["name"]), []))
                runs[rid] = (job, sorted(set(known) | {str(f) for f in used}))
    return runs


def quoted_documents(events: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """run id -> (job, document id -> the chunk refs quoted) of the stage runs whose lineage quotes tenant document
    chunks directly (the `moe_graph_facts` facet's `documents`)."""
    runs: dict[str, tuple[str, dict[str, list[str]]]] = {}
    for event in events:
        for ds in event.get("inputs") or []:
            quoted = ((ds.get("inputFacets") or {}).get("moe_graph_facts") or {}).get("documents") or []
            if quoted:
                rid = str(event["run"]["runId"])
                docs = runs.setdefault(rid, (str(event["job"]["name"]), {}))[1]
                for ref in quoted:
                    chunks = docs.setdefault(document_of(str(ref)), [])
                    chunks[:] = sorted(set(chunks) | {str(ref)})
    return runs


def fact_titles(store_records: list[Any]) -> dict[str, str]:
    """relation id -> its title ("subject RELATION object"), as the graph results of the record name their sources."""
    titles: dict[str, str] = {}
    for record in store_records:
        if record.message_type == "TaskResult":
            for s in record.payload.get("sources") or []:
                if isinstance(s, dict) and s.get("kind") in ("graph", "document") and s.get("ref") and s.get("title"):
                    titles[str(s["ref"])] = str(s["title"])
    return titles


class FactLineage:
    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def answer(self, response_id: str, tenants: list[str]) -> dict[str, Any] | None:
        """Upstream of an answer (None: no record of it in these tenants)."""
        owner = await self.store.owner(response_id)
        if owner is None or owner not in tenants:
            return None
        g = Graph(f"answer:{response_id}")
        g.node(g.root, "answer", response_id, tenant_id=owner)
        titles = fact_titles(await self.store.records(response_id))
        facts: set[str] = set()
        events = await self.store.lineage(response_id)
        for run_id, (job, used) in graph_runs(events).items():
            run = g.node(f"run:{run_id}", "run", job, run_id=run_id, facts=len(used))
            g.edge(run, g.root, "answered")
            for fact in used:
                g.edge(g.node(f"fact:{fact}", "fact", titles.get(fact, fact), fact_id=fact), run, "used_by")
                facts.add(fact)
        for run_id, (job, quoted) in quoted_documents(events).items():
            run = g.node(f"run:{run_id}", "run", job, run_id=run_id)
            g.edge(run, g.root, "answered")
            for document_id, chunks in quoted.items():
                title = next((titles[c] for c in chunks if c in titles), document_id)
                g.edge(g.node(f"document:{document_id}", "document", title, document_id=document_id, chunks=chunks),
                       run, "quoted_by")
        if facts:
            rows = await self.store.pool.fetch(IMPORTS_OF_FACTS, [owner], sorted(facts))
            for row in rows:
                await self._import(g, str(row["import_id"]), [owner])
                g.edge(f"import:{row['import_id']}", f"fact:{row['fact_id']}", "wrote")
            for row in await self.store.pool.fetch(LEARNED_FACTS, [owner], sorted(facts)):
                g.edge(_learned_node(g, str(row["origin_id"]), row["learned_from"], row["at"].isoformat()),
                       f"fact:{row['fact_id']}", "learned")
            for row in await self.store.pool.fetch(RELEASED_FACTS, [owner], sorted(facts)):
                await self._quarantine(g, str(row["origin_id"]), [owner], facts)
        await self._quarantine(g, response_id, [owner], None)  # downstream: what was held from this answer
        return g.as_dict()

    async def import_downstream(self, import_id: str, tenants: list[str]) -> dict[str, Any] | None:
        """An import, its approvals and document, its facts and every answer that used them (None: unknown here)."""
        g = Graph(f"import:{import_id}")
        written = await self._import(g, import_id, tenants)
        if written is None:
            return None
        await self._downstream(g, import_id, written, tenants)
        return g.as_dict()

    async def document_downstream(self, document_id: str, tenants: list[str]) -> dict[str, Any] | None:
        """A source document, the applied imports that name it and everything downstream of them, and the graph-rag
        runs that quoted one of its chunks directly with their answers (None: neither in these tenants)."""
        rows = await self.store.pool.fetch(IMPORTS_OF_DOCUMENT, tenants, document_id)
        quoting = await self.store.pool.fetch(ANSWERS_QUOTING_DOCUMENT, document_id, tenants)
        if not rows and not quoting:
            return None
        g = Graph(f"document:{document_id}")
        for row in rows:
            import_id = str(row["import_id"])
            written = await self._import(g, import_id, tenants) or []
            await self._downstream(g, import_id, written, tenants)
        doc = g.node(g.root, "document", document_id, document_id=document_id)
        for row in quoting:
            run = g.node(f"run:{row['run_id']}", "run", str(row["job_name"]), run_id=row["run_id"])
            g.edge(doc, run, "quoted_by")
            g.edge(run, g.node(f"answer:{row['response_id']}", "answer", str(row["response_id"])), "answered")
        return g.as_dict()

    async def _import(self, g: Graph, import_id: str, tenants: list[str]) -> list[str] | None:
        """The import's node with its approvals and source document; the relation ids it wrote (None: no record)."""
        rows = await self.store.pool.fetch(IMPORT_EVENTS, import_id, tenants)
        events = [(json.loads(r["payload"]), (r["created_at"] or r["broker_ts"]).isoformat()) for r in rows]
        by_action = {p.get("action"): (p, at) for p, at in events}
        if "knowledge_import_created" not in by_action:
            return None
        created, created_at = by_action["knowledge_import_created"]
        applied = by_action.get(APPLIED)
        details, done = created.get("details") or {}, (applied[0].get("details") or {}) if applied else {}
        nid = g.node(f"import:{import_id}", "import", import_id, import_id=import_id,
                     tenant_id=created.get("tenant_id"), status="applied" if applied else "pending",
                     bundle_digest=details.get("digest"),
                     origin_tenant=details.get("origin_tenant"), domains=details.get("domains"),
                     importer=details.get("principal"), imported_at=created_at,
                     approvals_required=details.get("approvals_required"), policy_version=details.get("policy_version"),
                     applied_at=applied[1] if applied else None, decided_by=done.get("decided_by"),
                     relations_written=done.get("relations_written"))
        for payload, at in events:
            if payload.get("action") == "knowledge_import_approved":
                who = str((payload.get("details") or {}).get("principal") or payload.get("actor"))
                g.edge(g.node(f"approval:{import_id}:{who}", "approval", f"approved by {who}", principal=who,
                              key=payload.get("actor"), at=at, note=payload.get("reason")), nid, "approved")
        document = done.get("document") or details.get("document")
        if isinstance(document, dict) and document.get("id"):
            doc = g.node(f"document:{document['id']}", "document", str(document.get("title") or document["id"]),
                         document_id=document["id"], sha256=document.get("sha256"), title=document.get("title"),
                         source=document.get("source"))
            g.edge(doc, nid, "source_of")
        return [str(f) for f in done.get("relation_ids") or []] if applied else []

    async def _quarantine(self, g: Graph, origin_id: str, tenants: list[str], facts: set[str] | None) -> None:
        """The quarantine entries of the triples learned from `origin_id` (with `facts`: only those whose release
        wrote one of them): each entry (held, why, when; released or rejected) with the approvals by principal, the
        origin -> `held` -> entry and entry -> `released` -> fact edges."""
        rows = await self.store.pool.fetch(QUARANTINE_OF_ORIGIN, origin_id, tenants)
        events = [(json.loads(r["payload"]), r["at"].isoformat()) for r in rows]
        ingested = next(((p, at) for p, at in events if p.get("action") == "ingested"), None)
        trails: dict[str, list[tuple[dict[str, Any], str]]] = {}
        for payload, at in events:
            if payload.get("action") in QUARANTINE_ACTIONS and payload.get("subject"):
                trails.setdefault(str(payload["subject"]), []).append((payload, at))
        for qid, trail in trails.items():
            first: dict[str, tuple[dict[str, Any], str]] = {}
            for payload, at in trail:
                first.setdefault(str(payload["action"]), (payload, at))
            released = first.get("quarantine_approved")
            done = (released[0].get("details") or {}) if released else {}
            fact = str(done["relation_id"]) if done.get("relation_id") else None
            if facts is not None and fact not in facts:
                continue
            held, held_at = first.get("quarantined", ({}, None))
            hold = held.get("details") or {}
            rejected = first.get("quarantine_rejected")
            triple = hold.get("triple") or done.get("triple") or {}
            status = "released" if released else "rejected" if rejected else "held"
            nid = g.node(f"quarantine:{qid}", "quarantine", f"quarantine {qid}", entry_id=qid, status=status,
                         reason=held.get("reason"), held_at=held_at, held_by=held.get("actor"),
                         domains=hold.get("domains") or done.get("domains"), policy=hold.get("policy"),
                         policy_version=hold.get("policy_version"), reach=hold.get("reach"),
                         triple=" ".join(str(triple.get(k)) for k in ("subject", "relation", "object")) if triple
                         else None, approvals_required=done.get("approvals_required"),
                         released_at=released[1] if released else None,
                         rejected_at=rejected[1] if rejected else None,
                         rejected_by=rejected[0].get("actor") if rejected else None, relation_id=fact)
            for payload, at in trail:
                if payload.get("action") == "quarantine_approval":
                    details = payload.get("details") or {}
                    who = str(details.get("principal") or payload.get("actor"))
                    g.edge(g.node(f"approval:{nid}:{who}", "approval", f"approved by {who}",
                                  principal=who, key=payload.get("actor"), at=at, note=details.get("note") or None),
                           nid, "approved")
            if facts is None:  # downstream of the answer (the root)
                g.edge(g.root, nid, "held")
            else:
                origin = (ingested[0].get("details") or {}).get("learned_from") if ingested else None
                g.edge(_learned_node(g, origin_id, json.dumps(origin) if origin else None,
                                     ingested[1] if ingested else held_at), nid, "held")
            if fact is not None:
                g.edge(nid, g.node(f"fact:{fact}", "fact", str(done.get("relation_id")), fact_id=fact), "released")

    async def _downstream(self, g: Graph, import_id: str, facts: list[str], tenants: list[str]) -> None:
        answers = 0
        for fact in facts[:MAX_FACTS]:
            used = json.dumps([{"inputFacets": {"moe_graph_facts": {"factIds": [fact]}}}])
            rows = await self.store.pool.fetch(ANSWERS_OF_FACT, used, tenants)
            if not rows:
                continue
            g.edge(f"import:{import_id}", g.node(f"fact:{fact}", "fact", fact, fact_id=fact), "wrote")
            for row in rows:
                run = g.node(f"run:{row['run_id']}", "run", str(row["job_name"]), run_id=row["run_id"])
                g.edge(f"fact:{fact}", run, "used_by")
                answers += f"answer:{row['response_id']}" not in g.nodes
                g.edge(run, g.node(f"answer:{row['response_id']}", "answer", str(row["response_id"])), "answered")
                if answers >= MAX_ANSWERS:
                    return


def _learned_node(g: Graph, origin_id: str, raw: str | None, at: str | None) -> str:
    """The answer or memory-ingest event a fact was learned from (kind from `learned_from`, else from the id)."""
    origin = json.loads(raw) if raw else {}
    memory = origin.get("kind") == "memory_ingest" or (not origin and origin_id.startswith(MEMORY_PREFIX))
    details = {"response_id": origin_id, "learned_at": at, "submitted_by": origin.get("submitted_by"),
               "expert": origin.get("source_expert"), "model": origin.get("source_model")}
    if memory:
        return g.node(f"memory:{origin_id}", "memory_ingest", f"memory ingest {origin_id}", **details)
    return g.node(f"answer:{origin_id}", "answer", origin_id, **details)
