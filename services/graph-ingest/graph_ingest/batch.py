"""An answer's triples decided together (issue 52): one query resolves their names, finds what contradicts each and
measures each one's blast radius (measured again only when a triple before it is not written: plan_read), one request
to OPA decides them all, and one transaction writes and holds them. The outcome is the one the triples would get one
after the other (the order of the extraction): a triple's reach counts the relations the triples before it write, and
a name resolves to the entity an earlier triple creates (moe_core.knowledge.graph.checks).

An answer in which a triple could contradict an earlier one of the same answer (TREATS and CAUSES between the same
two entities) is left to the one-at-a-time path (`plan` returns None): there the conflict lists name relations the
answer itself writes, with their trust after that write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from graph_ingest import core
from moe_core.knowledge.graph import GraphDB, Triple
from moe_core.knowledge.graph.checks import Resolved, reach_of
from moe_core.knowledge.graph.measure import Counted, Sizes
from moe_core.knowledge.graph.names import normalize
from moe_core.knowledge.graph.plan_read import PlanRead, read_plan
from moe_core.knowledge.graph.quarantine import blast_radius_exceeded
from moe_core.knowledge.graph.vocab import conflicting_types
from moe_core.policy.learned import LearningPolicy, Verdict

Action = Literal["reject", "blast", "held", "write"]


@dataclass
class Outcome:
    triple: Triple
    domains: list[str]
    conflicts: list[dict[str, Any]]
    action: Action = "write"
    reach: int = 0
    verdict: Verdict | None = None
    written: tuple[str, list[str]] | None = field(default=None)  # relation id, its entities' uids
    written_before: tuple[str, list[str]] | None = None  # written already (one at a time), as `written`
    qid: str = ""  # its quarantine item (held, blast)


def contradicts_itself(resolved: Resolved, triples: list[Triple]) -> bool:
    """Whether a triple could contradict an earlier one of the same answer (the same two entities)."""
    def ident(name: str) -> str:
        return resolved.uids.get(normalize(name)) or f"new:{normalize(name)}"

    ends = [(ident(t.subject), ident(t.object)) for t in triples]
    return any(ends[i] == ends[j] and triples[i].relation in conflicting_types(triples[j].relation)
               for j in range(len(triples)) for i in range(j))


@dataclass
class Plan:
    outcomes: list[Outcome] | None  # each triple's, in order (None: it may contradict itself, one at a time)
    resolved: Resolved  # the entities the triples' names resolved to, as they were checked
    before: dict[str, int] | None  # the tenant's entities and relations before (None: no triples, not counted)
    counted: Counted | None = None  # `before` with the version it holds at: the write adds to it (store.WRITE_MANY)


async def plan(db: GraphDB, learning: LearningPolicy, tenant: str, threshold: int, triples: list[Triple],
               domains: list[list[str]], document: list[str], sizes: Sizes, read: PlanRead | None = None) -> Plan:
    """Each triple's outcome, in order; the tenant's size is counted in the read that resolves the names (or, while
    the tenant's version is the one of the writer's last count, taken from `sizes`), which also finds the conflicts
    and measures the reach each triple has when those before it are written (plan_read: asked again only when one
    before it is not). `read`: that read of these triples, if the caller made it (with their domains' entities)."""
    if not triples:
        return Plan([], Resolved(tenant, {}), None)
    if read is None:
        read = await read_plan(db, tenant, triples, sizes)
    if contradicts_itself(read.resolved, triples):
        return Plan(None, read.resolved, read.before)  # its triples written one at a time: counted after
    out = [Outcome(t, d, c) for t, d, c in zip(triples, domains, read.conflicts, strict=True)]
    for o in out:
        o.action = "reject" if core.conflict_decision(o.conflicts) == "reject" else "write"
    asked = [o for o in out if o.action == "write"]
    verdicts = await learning.decide_many(tenant, [(o.triple, o.domains) for o in asked], document) if asked else []
    for o, verdict in zip(asked, verdicts, strict=True):
        o.verdict = verdict
        o.action = "held" if verdict.held else "write"
    await _measure(db, read.resolved, out, threshold, read.reaches)
    return Plan(out, read.resolved, read.before, read.counted)


async def _measure(db: GraphDB, resolved: Resolved, out: list[Outcome], threshold: int, read: list[int]) -> None:
    """Each asked triple's reach, with the relations the triples before it write: the reaches of the plan's read
    while every triple before a measured one is written, else (and from the first triple held for its reach when a
    later one counted it as written) asked again, one query each time."""
    start = _apply(out, 0, read, threshold) if _all_before_written(out) else 0
    while start < len(out):
        items = [_reach_item(resolved, out, j) for j in range(start, len(out))]
        reaches = await reach_of(db, resolved.tenant, items)
        start = _apply(out, start, reaches, threshold)


def _all_before_written(out: list[Outcome]) -> bool:
    """Whether every triple before a measured one (not rejected) is written: what the plan's read assumed."""
    return not any(o.action != "write" and any(later.action != "reject" for later in out[i + 1:])
                   for i, o in enumerate(out))


def _apply(out: list[Outcome], start: int, reaches: list[int], threshold: int) -> int:
    """Take the reaches of out[start:]; where the next query starts (len(out): done)."""
    for j in range(start, len(out)):
        o = out[j]
        if o.action == "reject":
            continue
        o.reach = reaches[j - start]
        if blast_radius_exceeded(o.reach, threshold):
            was_written = o.action == "write"
            o.action = "blast"
            if was_written and any(later.action != "reject" for later in out[j + 1:]):
                return j + 1  # the later ones counted it as written: measured again without it
    return len(out)


def _reach_item(resolved: Resolved, out: list[Outcome], j: int) -> tuple[list[str], list[list[str]]]:
    """Triple j's start entities and the relations (uid pairs) the triples before it write."""
    if out[j].action == "reject":
        return [], []  # not measured
    before = [o.triple for o in out[:j] if o.action == "write"]
    created = {normalize(n) for t in before for n in (t.subject, t.object) if normalize(n) not in resolved.uids}
    triple = out[j].triple
    starts = sorted({u for n in (triple.subject, triple.object) if (u := resolved.uid(n, created)) is not None})
    edges = [[resolved.written_uid(t.subject), resolved.written_uid(t.object)] for t in before]
    return starts, edges


def since(planned: Counted | None, latest: Counted | None) -> Counted | None:
    """The count a write adds its makings to (store.WRITE_MANY's `since`): the plan's, or, when this replica wrote the
    tenant after the plan's read (answers handed at once: their plans read before the first of their writes, made one
    at a time), its count after that write: newer in the same epoch, or the plan's read found no version yet. With the
    plan's the statement finds the version moved (by this replica's own writes) and counts the whole tenant (a db hit
    per entity and relation: issue 52). Either way the statement checks that no other writer moved the version."""
    if planned is None or latest is None or latest.version == planned.version:
        return planned
    (n, lex, epoch), (latest_n, latest_lex, latest_epoch) = planned.version, latest.version
    newer = epoch is None or (latest_epoch == epoch and (latest_n or 0) >= (n or 0) and (latest_lex or 0) >= (lex or 0))
    return latest if newer else planned
