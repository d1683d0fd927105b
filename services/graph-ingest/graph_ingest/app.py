"""graph-ingest: answers -> triples in the knowledge graph (or quarantine: a dense hub, or a protected domain
held by the write policy, moe_core.policy.learned); feedback -> verified or flagged relations; trust recomputed in
pages; every decision on the audit topic."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from neo4j import AsyncManagedTransaction

from graph_ingest import batch, core
from graph_ingest.provenance import learned_from, origin_label
from graph_ingest.settings import GraphIngestSettings
from moe_core.contracts import Envelope, Feedback, IngestEvent
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.audit import audit_event
from moe_core.knowledge.graph.feedback import apply_feedback, recompute_trust
from moe_core.knowledge.graph.lifecycle import prepare_graph
from moe_core.knowledge.graph.measure import Counted, Sizes, tenant_size
from moe_core.knowledge.graph.names import normalize
from moe_core.knowledge.graph.plan_read import PlanRead, read_plan
from moe_core.knowledge.graph.quarantine import Quarantine, blast_radius_exceeded
from moe_core.knowledge.graph.synthesis import insight_of, write_synthesis_in
from moe_core.knowledge.graph.trust import extraction_confidence
from moe_core.llm.inference import InferenceClient, InferenceError
from moe_core.policy.domains import domains_by_key, triple_domains, triple_keys
from moe_core.policy.learned import LearningPolicy
from moe_core.runtime.bus import TRANSIENT_ERRORS, Bus
from moe_core.runtime.idempotency import Memo
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, Notes, Stage

log = logging.getLogger(__name__)


class GraphIngest:
    def __init__(self, settings: GraphIngestSettings, bus: Bus, db: GraphDB, inference: InferenceClient,
                 memo: Memo) -> None:
        self.settings = settings
        self.bus = bus
        self.db = db
        self.inference = inference
        self.policy = settings.trust_policy()
        self.store = GraphStore(db, self.policy)
        self.quarantine = Quarantine(self.store)
        # extracted triples per answer, with their domains resolved before any was written: a redelivery writes
        # the same ones and decides them on the same domains
        self.memo = memo
        # the original's ingest semaphore: background extraction calls capped per replica
        self.calls = asyncio.Semaphore(settings.graph_ingest_concurrency)
        self.learning = LearningPolicy.from_settings(settings, db, settings.service_name)
        self.sizes = Sizes()  # each tenant's size as its last write counted it: the next answer's "before"
        # this replica's write transactions one at a time (issue 52): the runtime hands it up to
        # MOE_CONSUMER_IN_FLIGHT answers at once, and two writes of one tenant at once deadlock in Neo4j on the
        # tenant's GraphVersion node (every write moves it): the driver rolls one back and runs it again after a
        # backoff of about a second, so at 8 requests at once about one write in two ran twice
        # (tests/graph/graph_ingest/test_concurrent_answers.py)
        self.writing = asyncio.Lock()

    async def on_ingest(self, event: IngestEvent) -> None:
        reason = core.skip_reason(event, self.settings.graph_ingest_skip_types)
        if reason is not None:
            log.info("not learning from %s: %s", event.response_id, reason)
            return
        extracted = await self._triples(event)
        if extracted is None:
            return
        triples, resolved, read = extracted
        triples = [t.model_copy(update={"confidence": extraction_confidence(t.confidence, event.confidence)})
                   for t in triples]
        origin = learned_from(event)  # codex-lineage's fact lineage follows it from the record
        prov = Provenance(tenant=event.tenant_id, source="extracted", domain=core.domain_of(event),
                          origin=event.response_id, expert=event.source_expert, model=event.source_model,
                          learned_from=origin_label(origin))
        # the tenant's size before (counted in the read that resolves the names, or, while nothing moved the tenant's
        # version since, the count this replica's last write of it took) and after (in the write transaction); an
        # answer of no triples changes no entity or relation: not counted, and its run carries no counts
        # (codex-lineage's drift reads a zero change)
        planned = await batch.plan(self.db, self.learning, prov.tenant, self.settings.graph_blast_radius_max,
                                   triples, resolved, event.review_domains, self.sizes, read)
        outcomes = planned.outcomes
        if outcomes is None:  # a triple may contradict an earlier one of the answer: one at a time
            outcomes = [await self._learn(event, t, prov, d) for t, d in zip(triples, resolved, strict=True)]
        after = None
        if any(o.action != "reject" for o in outcomes) or insight_of(event) is not None:  # else nothing to write
            async with self.writing:  # the count noted before the next write reads it (batch.since)
                counted = await self.db.transaction(lambda tx: self._write(tx, event, prov, outcomes, planned))
                if counted is not None:  # committed: the graph's count
                    self.sizes.counted(prov.tenant, counted)
                    after = counted.counts
        for outcome in outcomes:
            await self._report(event, outcome)
        kept = [o.triple for o in outcomes if o.written is not None]
        written = [o.written[0] for o in outcomes if o.written is not None]
        # codex-lineage's drift checks read these: what the extraction declared, and of it what was written (a
        # triple held for review or rejected adds nothing now, and is no drift)
        stats: dict[str, Any] = {"declared_entities": _entities(triples), "declared_relations": len(triples),
                                 "written_entities": _entities(kept), "written_relations": len(kept)}
        if planned.before is not None:
            stats.update(before=planned.before,
                         after=after if after is not None else await tenant_size(self.db, prov.tenant))
        await self._audit(event, "ingested", event.response_id, f"{len(written)} of {len(triples)} triples written",
                          {"relations": written, "triples": [t.model_dump() for t in kept], "domain": prov.domain,
                           "stats": stats, "learned_from": origin})

    async def _write(self, tx: AsyncManagedTransaction, event: IngestEvent, prov: Provenance,
                     outcomes: list[batch.Outcome], planned: batch.Plan) -> Counted | None:
        """The answer's triples written (GraphStore.write_many_counted_in, between the entities the plan checked) or
        held, its insight, and the tenant's size after them, in one transaction (retried whole by the driver)."""
        threshold, ttl_s = self.settings.graph_blast_radius_max, self.settings.graph_quarantine_ttl_s
        for o in outcomes:
            o.written, o.qid = None, ""
            if o.action == "blast":
                o.qid, _ = await self.quarantine.hold_in(tx, o.triple, prov, o.reach, threshold, ttl_s=ttl_s,
                                                         domains=o.domains, submitted_by=event.submitted_by)
            elif o.action == "held" and o.verdict is not None:
                o.qid, _ = await self.quarantine.hold_in(tx, o.triple, prov, o.reach, threshold,
                                                         reason=o.verdict.reason(), ttl_s=ttl_s,
                                                         domains=o.verdict.domains, submitted_by=event.submitted_by)
            elif o.action == "write" and o.written_before is not None:
                o.written = o.written_before
        writes = [o for o in outcomes if o.action == "write" and o.written_before is None]
        # the tenant's size after, in the statement that writes (the insight's node adds no entity or relation);
        # this replica's writes are made one at a time (self.writing): its last count holds unless another writer
        # moved the version since, and then it is the tenant's size just before this write, the run's "before"
        since = batch.since(planned.counted, self.sizes.last(prov.tenant))
        wrote, counted = await self.store.write_many_counted_in(tx, [o.triple for o in writes], prov,
                                                                planned.resolved.uids, count=planned.before is not None,
                                                                since=since)
        if counted is not None and counted.steps > 0 and since is not None and since is not planned.counted:
            planned.before, planned.counted = dict(since.counts), since
        for o, w in zip(writes, wrote, strict=True):
            o.written = (w.id, [w.subject_uid, w.object_uid])
        done = [o.written for o in outcomes if o.written is not None]
        await write_synthesis_in(tx, prov, event, [u for _, uids in done for u in uids])  # the judge's insight
        return counted

    async def _report(self, event: IngestEvent, o: batch.Outcome) -> None:
        """A triple's decisions on the audit topic, as they were taken: a conflict, the blast radius, the policy."""
        triple, threshold = o.triple.model_dump(), self.settings.graph_blast_radius_max
        if o.action == "reject":
            await self._audit(event, "conflict_rejected", o.triple.title(), "contradicts curated or verified knowledge",
                              {"triple": triple, "conflicts": o.conflicts})
            return
        if o.action == "blast":
            await self._audit(event, "quarantined", o.qid, f"blast radius {o.reach} > {threshold}",
                              {"triple": triple, "reach": o.reach, "threshold": threshold})
            return
        assert o.verdict is not None
        await self.bus.publish(self.learning.record(event, o.triple, o.verdict), self.bus.topics.audit)
        if o.action == "held":  # a protected domain (or refused): an admin decides, as for a dense triple
            await self._audit(event, "quarantined", o.qid, o.verdict.reason(),
                              {"triple": triple, "domains": o.verdict.domains, "policy": "held",
                               "policy_version": o.verdict.decision.version.digest})
        elif o.conflicts and o.written is not None:
            await self._audit(event, "conflict_recorded", o.written[0], "contradicts other extracted knowledge",
                              {"triple": triple, "conflicts": o.conflicts})

    async def _triples(self, event: IngestEvent) -> tuple[list[Triple], list[list[str]], PlanRead | None] | None:
        """The answer's triples and each one's domains: remembered per answer in one key (one round trip to read,
        one to write: issue 52), so a redelivery writes the same ones and, after a partial write (OPA went down
        mid-answer), decides them on the same domains, not on entities its own first attempt filed. The entities
        the domains are resolved by come in the plan's read (returned: batch.plan reads nothing more), a round trip
        less per answer (issue 52); a remembered answer's plan is read by batch.plan."""
        stored = await self.memo.get(event.response_id)
        if stored is not None:
            return await self._remembered(event, stored)
        max_triples, kind = self.settings.graph_max_triples, core.event_strategy(event)
        try:
            async with self.calls:
                completion = await self.inference.chat(
                    self.inference.config.for_role(self.settings.graph_ingest_role),
                    core.extraction_messages(event, max_triples, kind),
                    max_tokens=self.settings.graph_ingest_max_tokens, temperature=0.0,
                    json_schema=core.triples_schema(max_triples, kind), schema_name="triples",
                    timeout_s=self.settings.graph_ingest_timeout_s,
                )
        except InferenceError as exc:
            log.warning("triple extraction failed for %s, nothing learned: %s", event.response_id, exc)
            await self._audit(event, "ingest_failed", event.response_id, f"extraction failed: {exc}")
            return None
        triples = core.sanitise(completion.content, max_triples, kind)
        read, domains = None, []
        if triples:
            words, keys = self.learning.words(), triple_keys(triples)  # PolicyDown before any read, as resolve_many
            read = await read_plan(self.db, event.tenant_id, triples, self.sizes, keys)
            domains = triple_domains(triples, domains_by_key(read.domains, keys), words)
        mine = json.dumps({"triples": [t.model_dump() for t in triples], "domains": domains})
        kept = await self.memo.put_first(event.response_id, mine)
        if kept != mine:  # another delivery's triples stand: planned afresh
            return await self._remembered(event, kept)
        return triples, domains, read

    async def _remembered(self, event: IngestEvent, stored: str
                          ) -> tuple[list[Triple], list[list[str]], PlanRead | None]:
        """The triples and domains of a memo; a memo of the triples alone (written before their domains were kept
        with them) has its domains resolved now."""
        data = json.loads(stored)
        items, domains = (data, None) if isinstance(data, list) else (data["triples"], data["domains"])
        triples = [Triple.model_validate(t) for t in items]
        if domains is None or len(domains) != len(triples):
            domains = await self.learning.resolve_many(event.tenant_id, triples) if triples else []
        return triples, domains, None

    async def _learn(self, event: IngestEvent, triple: Triple, prov: Provenance,
                     domains: list[str]) -> batch.Outcome:
        """One triple decided and, when written, written now (its own transaction): the path of an answer whose
        triples may contradict each other, where each triple's checks see the ones before it."""
        o = batch.Outcome(triple, domains, await self.store.conflicts(prov.tenant, triple))
        if core.conflict_decision(o.conflicts) == "reject":
            o.action = "reject"
            return o
        o.reach = await self.store.reach(prov.tenant, triple)
        if blast_radius_exceeded(o.reach, self.settings.graph_blast_radius_max):
            o.action = "blast"
            return o
        # OPA down: PolicyDown, redelivered
        o.verdict = await self.learning.decide(event.tenant_id, triple, domains, event.review_domains)
        o.action = "held" if o.verdict.held else "write"
        if o.action == "write":
            async with self.writing:
                written = await self.store.write_triple(triple, prov)
            o.written_before = (written.id, [written.subject_uid, written.object_uid])
        return o

    async def on_feedback(self, feedback: Feedback) -> None:
        origin = f"{feedback.response_id}:{feedback.rating}:{feedback.created_at.isoformat()}"
        mark, changed = await apply_feedback(self.db, self.policy, feedback.tenant_id, feedback.graph_refs,
                                             feedback.rating, origin)
        if mark is not None and changed:
            await self._audit(feedback, f"relations_{mark}", feedback.response_id,
                              f"{feedback.source} rating {feedback.rating}"
                              + (f" ({feedback.comment})" if feedback.source != "user" else ""),
                              {"relations": changed, "source": feedback.source})

    async def _audit(self, cause: Envelope, action: str, subject: str, reason: str = "",
                     details: dict[str, object] | None = None) -> None:
        event = audit_event(cause, actor=self.settings.service_name, action=action, subject=subject,
                            reason=reason, details=details)
        await self.bus.publish(event, self.bus.topics.audit)

    async def start(self) -> None:
        await prepare_graph(self.db, seed=self.settings.graph_seed_ontology)

    async def close(self) -> None:
        await self.learning.close()

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        return [self.run_trust_recompute]

    async def run_trust_recompute(self) -> None:
        period = self.settings.graph_trust_recompute_s
        while period > 0:
            await asyncio.sleep(period)
            try:
                done = await recompute_trust(self.db, self.policy, self.settings.graph_trust_page_size)
                log.info("trust recomputed: %d relations, %d changed", done.scanned, done.changed)
            except TRANSIENT_ERRORS:
                log.exception("trust recomputation failed; next period retries")


STAGE = Stage(
    name="graph-ingest",
    settings=GraphIngestSettings,
    build=lambda res: GraphIngest(res.settings, res.bus, res.db, res.inference, res.memo(
        f"graph-ingest:triples:{res.settings.topic_namespace}", res.settings.ingest_memo_ttl_s)),
    summary="Answers -> triples in the knowledge graph (or quarantine); feedback -> verified or flagged "
            "relations; trust recomputed in pages; every decision on the audit topic.",
    consumes=(Consumes("ingest", IngestEvent, "on_ingest", linger=True, signed=True),
              Consumes("feedback", Feedback, "on_feedback")),
    publishes=("audit",),
    needs=("redis", "inference", "neo4j"),
    request_budget=False,  # learning after the answer: not the client's spend
    notes=Notes(keeps="Neo4j (entities, relations, `:Quarantine`, `:Synthesis`); Redis `graph-"
                    "ingest:triples:<ns>:<response_id>` (extracted triples and their domains)",
                dedupe="extracted triples kept per `response_id`; relations MERGEd on a stable "
                       "id, `version`/`assertions` counted once per answer (`asserted_by`), "
                       "quarantine items MERGEd on (answer, triple); feedback marks once per "
                       "feedback message (`feedback_by`)",
                redelivery="writes the same triples again without a model call: nothing changes; "
                           "audit events repeat with the same `details.event_id`"),
)


def create_app(settings: GraphIngestSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, db, inference, redis, manage_broker."""
    return create_stage_app(STAGE, settings, **overrides)


def _entities(triples: list[Triple]) -> int:
    """The distinct entities the triples name."""
    return len({normalize(n) for t in triples for n in (t.subject, t.object)})
