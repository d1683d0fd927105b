"""gap-healer: ontology gaps -> classified entities (source gap_healer), or, when the write policy holds the
classification (a protected domain: gap_healer.review), a quarantine item for review; lint requests ->
contradiction resolution, decay deletion and orphan cleanup. Every decision is an audit event."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from gap_healer import core, retry, review
from gap_healer.aliases import apply_aliases
from gap_healer.batch import Batcher, Question, Reply
from gap_healer.lint import Deletion, Linter
from gap_healer.settings import GapHealerSettings
from moe_core.contracts import Envelope, LintRequest, OntologyGap
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.audit import audit_event
from moe_core.knowledge.graph.gaps import Gaps
from moe_core.knowledge.graph.lifecycle import prepare_graph
from moe_core.knowledge.graph.names import normalize
from moe_core.knowledge.graph.quarantine import Quarantine
from moe_core.llm.inference import InferenceClient, InferenceError
from moe_core.policy.learned import LearningPolicy, Verdict
from moe_core.runtime.bus import Bus
from moe_core.runtime.idempotency import Memo
from moe_core.runtime.observability.metrics import GRAPH_DECAY_DELETIONS, GRAPH_GAP_DECISIONS, GRAPH_LINT_FINDINGS
from moe_core.stage.resources import make_resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, Notes, Stage

log = logging.getLogger(__name__)

CLASSES = """
MATCH (e:Entity)
WHERE e.tenant = $shared AND e.is_class
RETURN e.name AS name
ORDER BY e.name
"""
QUARANTINE_ID = re.compile(r"\(quarantine (q[0-9a-f]+)\)")  # a gap held before its quarantine_id was kept
# A held classification's quarantine item names no blast-radius limit (its `threshold`): the write policy held it
NO_LIMIT = -1


class GapHealer:
    def __init__(self, settings: GapHealerSettings, bus: Bus, db: GraphDB, inference: InferenceClient,
                 memo: Memo) -> None:
        self.settings = settings
        self.bus = bus
        self.db = db
        self.inference = inference
        self.store = GraphStore(db, settings.trust_policy())
        self.linter = Linter(db, settings.trust_policy(), settings.lint_page_size)
        self.memo = memo  # classifications per tenant and term: a redelivery asks no model again
        self.gaps = Gaps(db)  # each gap's state (open, healed, rejected, quarantined) for operators and metrics
        self.quarantine = Quarantine(self.store)
        self.learning = LearningPolicy.from_settings(settings, db, settings.service_name)
        self.schedule: Any = None  # gap_healer.schedule.Scheduler, made at start
        self.classes: list[str] = []  # the base ontology's classes, read once (_classes)
        # one record at a time (MOE_CONSUMER_IN_FLIGHT=1): no other question could join a batch while one waits
        self.batcher = Batcher(settings.gap_batch_terms,
                               settings.gap_batch_wait_s if settings.consumer_in_flight > 1 else 0.0)

    async def on_gap(self, gap: OntologyGap) -> None:
        await self.heal(gap)

    async def heal(self, gap: OntologyGap) -> str:
        """Classify and write one gap; the outcome: healed, quarantined (held for review), rejected, failed
        (stays open), known, waiting (its classification waits for review already), cooling_down or review_limit
        (reviewers rejected its classification: gap_healer.retry), ignored."""
        term = gap.term.strip()
        if gap.tenant_id == SHARED_TENANT or not normalize(term):
            return "ignored"
        seen = await self.gaps.seen(gap.tenant_id, term, gap.context, gap.response_id, gap.asked_by)
        state = seen["state"]
        known = await self.store.resolve(gap.tenant_id, term)
        if known is not None:  # healed meanwhile (or a redelivery, or its held classification approved)
            if state in ("open", "quarantined") or (state == "rejected" and seen.get("review_rejections")):
                await self.gaps.decide(gap.tenant_id, term, "healed", "the term is known now")
            return "known"
        if state == "quarantined":  # reviewers decide its classification: no second item per question
            seen = await self._review_outcome(gap, term, seen)
            if seen["state"] == "quarantined":
                return "waiting"
        held_back = retry.held_back(seen, self.settings.gap_review_retry_after_s,
                                    self.settings.gap_max_review_rejections, time.time())
        if held_back is not None:  # reviewers rejected its classification: not again at once, nor for ever
            return held_back
        classes = retry.classes_left(await self._classes(), seen)
        classified = await self._classify(gap, term, classes, retry.memo_round(seen))
        if classified is None:
            GRAPH_GAP_DECISIONS.labels("failed").inc()
            return "failed"
        raw, asked_by = classified
        found = core.parse_classification(raw, term, classes, self.settings.gap_min_confidence)
        if found is None:
            reason = "not a known kind of entity, or not confident enough"
            await self._audit(gap, "gap_rejected", term, reason, {"classification": raw[:2000]})
            await self.gaps.decide(gap.tenant_id, term, "rejected", reason)
            GRAPH_GAP_DECISIONS.labels("rejected").inc()
            return "rejected"
        prov = Provenance(tenant=gap.tenant_id, source="gap_healer", domain=found.domain,
                          origin=f"gap:{gap.response_id}:{normalize(term)}", entity_type=found.parent)
        triple = review.classified_triple(found)
        verdict = await review.decide(self.learning, gap, triple, found)  # OPA down: PolicyDown, redelivered
        await self.bus.publish(self.learning.record(gap, triple, verdict), self.bus.topics.audit)
        if verdict.held:  # submitted by the asker whose question the classification came from: not their approval
            return await self._hold(gap, term, triple, prov, found, verdict, asked_by)
        # write_many_in of the one triple: its names resolved and the triple written in two statements (write_triple:
        # five), leaving what write_triple leaves (tests/graph/moe_core/knowledge/test_write_many.py; issue 52)
        [written] = await self.db.transaction(lambda tx: self.store.write_many_in(tx, [triple], prov))
        aliases = await apply_aliases(self.db, gap.tenant_id, written.subject_uid, found.aliases)
        await self._audit(gap, "gap_healed", written.id, f"{found.name} IS_A {found.parent}",
                          {"entity": written.subject_uid, "domain": found.domain, "aliases": aliases.kept,
                           "aliases_dropped": aliases.dropped, "confidence": found.confidence,
                           "domains": verdict.domains, "policy_version": verdict.decision.version.digest})
        await self.gaps.decide(gap.tenant_id, term, "healed", f"{found.name} IS_A {found.parent}",
                               entity=written.subject_uid, parent=found.parent)
        GRAPH_GAP_DECISIONS.labels("healed").inc()
        return "healed"

    async def _classes(self) -> list[str]:
        """The base ontology's classes, read at the first gap to classify and kept: only seeding the ontology (a
        release's start) makes classes, and reading them filtered every shared entity (issue 52)."""
        if not self.classes:
            self.classes = [r["name"] for r in await self.db.read(CLASSES, shared=SHARED_TENANT)]
            if not self.classes:
                raise RuntimeError("the base ontology has no classes (not seeded?)")
        return self.classes

    async def _hold(self, gap: OntologyGap, term: str, triple: Triple, prov: Provenance,
                    found: core.Classification, verdict: Verdict, asked_by: str | None) -> str:
        """A protected domain (or refused): the classification waits in the quarantine like a learned triple; its
        aliases are not applied (only recorded); the gap is quarantined, not healed. The item is submitted by the
        principal whose question the classification was made from (quarantine.rego: own_submission)."""
        reach = await self.store.reach(gap.tenant_id, triple)
        qid, _ = await self.quarantine.hold(triple, prov, reach, NO_LIMIT, reason=verdict.reason(),
                                            ttl_s=self.settings.graph_quarantine_ttl_s, domains=verdict.domains,
                                            submitted_by=asked_by)
        await self._audit(gap, "gap_quarantined", qid, verdict.reason(),
                          {"triple": triple.model_dump(), "entity_type": found.parent, "domain": found.domain,
                           "domains": verdict.domains, "policy": verdict.outcome,
                           "policy_version": verdict.decision.version.digest, "confidence": found.confidence,
                           "aliases_not_applied": found.aliases, "submitted_by": asked_by})
        await self.gaps.decide(gap.tenant_id, term, "quarantined",
                               f"{triple.title()} waits for review (quarantine {qid}): {verdict.reason()}",
                               parent=found.parent, quarantine_id=qid)
        GRAPH_GAP_DECISIONS.labels("quarantined").inc()
        return "quarantined"

    async def _review_outcome(self, gap: OntologyGap, term: str, seen: dict[str, Any]) -> dict[str, Any]:
        """The gap as its held classification's review left it: still `quarantined` while the item is pending;
        `rejected` when reviewers rejected it (normally recorded by the rejection itself; here for an item rejected
        before that was recorded), `open` again when it expired unreviewed or was approved but is not in the graph."""
        qid = str(seen.get("quarantine_id") or next(iter(QUARANTINE_ID.findall(str(seen.get("reason") or ""))), ""))
        item = await self.quarantine.get(qid, [gap.tenant_id]) if qid else None
        if item is None or item["status"] == "pending":
            return seen
        if item["status"] == "rejected":
            after = await self.gaps.review_rejected(item, item.get("decided_by"), None, str(item.get("note") or ""))
            if after is not None:
                await self._audit(gap, "gap_review_rejected", str(after["id"]), str(after.get("reason") or ""),
                                  {"term": after.get("term"), "state": after["state"], "quarantine_id": qid,
                                   "rejected_class": item.get("object"), "principal": item.get("decided_by"),
                                   "note": item.get("note") or "", "review_rejections": after.get("review_rejections"),
                                   "rejected_classes": after.get("rejected_classes")})
        else:
            why = ("expired unreviewed" if item["status"] == "expired"
                   else "was approved but is not in the graph")
            after = await self.gaps.reopen(gap.tenant_id, term, qid, f"its classification (quarantine {qid}) {why}")
            if after is not None:
                await self._audit(gap, "gap_reopened", str(after["id"]), str(after.get("reason") or ""),
                                  {"term": after.get("term"), "quarantine_id": qid, "status": item["status"]})
        return after if after is not None else await self.gaps.seen(gap.tenant_id, term, gap.context,
                                                                    gap.response_id, gap.asked_by)

    async def _classify(self, gap: OntologyGap, term: str, classes: list[str],
                        round_: str = "") -> tuple[str, str | None] | None:
        """The model's classification and the principal whose question it was made from (remembered with it, so
        a later gap reusing it holds it as that asker's); None: the call failed."""
        stored = await self.memo.get(self._memo_key(gap.tenant_id, term, round_))
        if stored is None:
            stored = await self._ask(gap, term, classes, round_)
            if stored is None:
                return None
        value = json.loads(stored)
        if isinstance(value, dict):
            return str(value.get("content") or ""), value.get("asked_by")
        return str(value), gap.asked_by  # remembered before the asker was: this gap's

    def _memo_key(self, tenant: str, term: str, round_: str) -> str:
        return f"{tenant}:{normalize(term)}{round_}"

    async def _ask(self, gap: OntologyGap, term: str, classes: list[str], round_: str) -> str | None:
        """Ask the model, with the question's other new terms not yet classified and the terms of other questions
        of the tenant that come within MOE_GAP_BATCH_WAIT_S (gap_healer.batch: one call, the class list once), and
        remember each of this question's terms' answer; this term's stored answer, None when the call failed. A
        term after a review rejection is asked alone (its class list leaves out the rejected classes), and so is a
        replay as recorded (its call as it was made)."""
        others = [t for t in gap.terms if normalize(t) != normalize(term)] if not round_ else []
        others = [t for t in others if await self.memo.get(self._memo_key(gap.tenant_id, t, "")) is None]
        terms = [term, *others]

        async def ask(questions: list[Question]) -> Reply:
            return await self._ask_model(questions, classes)

        try:
            if round_ or gap.as_recorded is not None:
                reply = await ask([Question(terms, gap.context)])
            else:
                reply = await self.batcher.classify((gap.tenant_id, tuple(classes)), terms, gap.context, ask)
        except InferenceError as exc:
            log.warning("classifying %r failed, the gap stays open: %s", term, exc)
            await self.gaps.failed(gap.tenant_id, term, f"{type(exc).__name__}: {exc}")
            return None
        for other in others:  # each sibling's answer waits for its own gap (none: that gap asks again)
            if other in reply.answers:
                await self.memo.put_first(self._memo_key(gap.tenant_id, other, ""),
                                          json.dumps({"content": reply.answers[other], "asked_by": gap.asked_by}))
        # not answered cleanly for this term: unusable, as any such answer
        mine = reply.answers.get(term) or json.dumps({"unanswered": reply.raw[:2000]})
        return await self.memo.put_first(self._memo_key(gap.tenant_id, term, round_),
                                         json.dumps({"content": mine, "asked_by": gap.asked_by}))

    async def _ask_model(self, questions: list[Question], classes: list[str]) -> Reply:
        """One model call for the terms of `questions` (each term once); every question's term as written -> its
        classification (the model's JSON, or {"unanswered": ...} when the answer was of no use for any term: each
        is rejected, as alone). A term the answer left out (or mixed up, core.split_batch) is not in it."""
        firsts = {normalize(t): (i, t) for i, q in reversed(list(enumerate(questions))) for t in reversed(q.terms)}
        groups = [(mine, q.context) for i, q in enumerate(questions)
                  if (mine := [t for t in q.terms if firsts[normalize(t)] == (i, t)])]
        terms = [t for mine, _ in groups for t in mine]
        batched = len(terms) > 1
        words = self.settings.gap_context_words
        completion = await self.inference.chat(
            self.inference.config.for_role(self.settings.gap_healer_role),
            core.batch_messages(groups, classes, words) if batched else
            core.classification_messages(terms[0], groups[0][1], classes, words),
            max_tokens=self.settings.gap_max_tokens * len(terms), temperature=0.0,
            json_schema=core.batch_schema(terms, classes) if batched else core.classification_schema(classes),
            schema_name="classification", timeout_s=self.settings.gap_timeout_s,
        )
        answers = core.split_batch(completion.content, terms) if batched else {terms[0]: completion.content}
        if not answers:
            answers = {t: json.dumps({"unanswered": completion.content[:2000]}) for t in terms}
        by_key = {normalize(t): a for t, a in answers.items()}
        return Reply({t: by_key[normalize(t)] for q in questions for t in q.terms if normalize(t) in by_key},
                     completion.content)

    async def on_lint(self, request: LintRequest) -> None:
        await self.lint(request)

    async def lint(self, request: LintRequest) -> list[Deletion]:
        """Run the request's checks; every deletion is an audit event and a lint finding."""
        deletions = await self.linter.lint(request.tenant_id, list(request.checks))
        for d in deletions:
            GRAPH_LINT_FINDINGS.labels(d.check).inc()
            if d.check == "decay":
                GRAPH_DECAY_DELETIONS.inc()
            await self._audit(request, f"{d.kind}_deleted", d.id, d.reason,
                              {"check": d.check, "tenant": d.tenant, **d.details})
        await self._audit(request, "lint_completed", request.tenant_id,
                          f"{len(deletions)} deletions", {"checks": list(request.checks),
                                                          "deleted": [d.id for d in deletions]})
        return deletions

    async def start(self) -> None:
        from gap_healer.schedule import Scheduler

        await prepare_graph(self.db, seed=self.settings.graph_seed_ontology)
        self.schedule = Scheduler(self, self.settings, self.memo.redis)

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        return [self.schedule.loop]

    async def close(self) -> None:
        if self.schedule is not None:
            await self.schedule.close()
        await self.learning.close()

    async def _audit(self, cause: Envelope, action: str, subject: str, reason: str = "",
                     details: dict[str, object] | None = None) -> None:
        event = audit_event(cause, actor=self.settings.service_name, action=action, subject=subject,
                            reason=reason, details=details)
        await self.bus.publish(event, self.bus.topics.audit)


STAGE = Stage(
    name="gap-healer",
    settings=GapHealerSettings,
    build=lambda res: GapHealer(res.settings, res.bus, res.db, res.inference, res.memo(
        f"gap-healer:class:{res.settings.topic_namespace}", res.settings.gap_memo_ttl_s)),
    summary="Ontology gaps -> classified entities (or the quarantine: a protected domain); lint requests -> "
            "contradiction resolution, decay deletion and orphan clean-up. Every decision is an audit event.",
    consumes=(Consumes("ontology_gaps", OntologyGap, "on_gap", linger=True),
              Consumes("linting", LintRequest, "on_lint")),
    publishes=("audit",),
    needs=("redis", "inference", "neo4j"),
    request_budget=False,  # healing the ontology is the fleet's work, not the client's spend
    notes=Notes(keeps="Neo4j (entities, `:OntologyGap`, `:Quarantine`); Redis "
                      "`gap-healer:class:<ns>:<tenant>:<term>[:review<n>]` (classifications, with their asker)",
                dedupe="a term already known is skipped, one whose classification waits for review too, one "
                       "whose classification reviewers rejected until MOE_GAP_REVIEW_RETRY_AFTER_S has passed (and "
                       "for good after MOE_GAP_MAX_REVIEW_REJECTIONS); classifications kept per tenant, term and "
                       "rejection round; quarantine items MERGEd on (gap, triple); "
                       "deletions re-check their rule in the deleting statement",
                redelivery="no second model call; the same quarantine item and policy decision; nothing left "
                           "to delete"),
)


def build(settings: GapHealerSettings, bus: Bus) -> GapHealer:
    """The gap-healer without its app (the one-shot mode); `close` releases what it holds."""
    healer: GapHealer = STAGE.build(make_resources(STAGE, settings, bus, None, None, None, {}))
    return healer


async def close(healer: GapHealer) -> None:
    await healer.close()
    await healer.inference.aclose()
    await healer.db.close()
    await healer.memo.redis.aclose()


def create_app(settings: GapHealerSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, db, inference, redis, manage_broker."""
    return create_stage_app(STAGE, settings, **overrides)
