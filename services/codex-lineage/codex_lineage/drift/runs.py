"""Ingest runs read from the audit chain: each answer graph-ingest learned from (its `ingested` event, with the
tenant's entity and relation counts before and after and what the extraction declared) and each applied
knowledge import (declared: the bundle; gained: what it created). The dataset of a run is the tenant's
knowledge graph, `graph/<tenant>`; conflicts and quarantines of the same window give the graph's rates."""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from codex_lineage.drift.flags import FLAGS, SEVERITIES, compute_drift, unwritten, worst
from moe_core.audit.store import AuditStore

GRAPH = "graph/"
# The metrics' summary reads the window as a stream, each run's first event once (a redelivered answer or a repeated
# apply sorts next to its first): held whole, a day of learned answers at 10 a second would be gigabytes
# of codex-lineage's memory at every evaluation (issue 52). What a run needs from other events is small and read first:
# the triples each answer did not write for a stated reason, and the imports' bundles.
RUNS = """
SELECT CASE WHEN payload::jsonb ->> 'action' = 'ingested' THEN 'ingest:' || (payload::jsonb ->> 'response_id')
            ELSE 'import:' || (payload::jsonb ->> 'subject') END AS run,
       recorded_at, tenant_id, payload::jsonb AS event FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND recorded_at >= now() - make_interval(hours => $1)
  AND payload::jsonb ->> 'action' = ANY($2::text[]) AND ($3::text IS NULL OR tenant_id = $3)
  AND ($4::text IS NULL OR response_id = $4)
ORDER BY run, recorded_at, tenant_id, seq
"""
ACCOUNTED = """
SELECT payload::jsonb ->> 'response_id' AS response_id, count(*) AS n FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND recorded_at >= now() - make_interval(hours => $1)
  AND payload::jsonb ->> 'action' = ANY($2::text[]) AND ($3::text IS NULL OR tenant_id = $3)
  AND coalesce(payload::jsonb ->> 'response_id', '') <> '' AND ($4::text IS NULL OR response_id = $4)
GROUP BY 1
"""
COUNTED = """
SELECT tenant_id, payload::jsonb ->> 'action' AS action, count(*) AS n FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND recorded_at >= now() - make_interval(hours => $1)
  AND payload::jsonb ->> 'action' = ANY($2::text[]) AND ($3::text IS NULL OR tenant_id = $3)
  AND ($4::text IS NULL OR response_id = $4)
GROUP BY 1, 2
"""
CREATED = """
SELECT tenant_id, payload::jsonb AS event FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND recorded_at >= now() - make_interval(hours => $1)
  AND payload::jsonb ->> 'action' = 'knowledge_import_created' AND ($2::text IS NULL OR tenant_id = $2)
  AND ($3::text IS NULL OR response_id = $3)
ORDER BY recorded_at, tenant_id, seq
"""
CONFLICTS = ["conflict_rejected", "conflict_recorded", "quarantined"]
PREFETCH = 500  # rows a cursor fetch brings


@dataclass(frozen=True)
class DriftSettings:
    threshold: float = 0.3
    min_declared: int = 5


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _ingest_run(event: dict[str, Any], at: datetime, tenant: str, cfg: DriftSettings,
                accounted: int = 0) -> dict[str, Any]:
    """`accounted`: the answer's triples rejected as conflicts or held in quarantine (not written, and no drift)."""
    details = event.get("details") or {}
    stats = details.get("stats")
    run = {"id": f"ingest:{event['response_id']}", "kind": "graph-ingest", "dataset": f"{GRAPH}{tenant}",
           "tenant": tenant, "created_at": event.get("created_at"), "recorded_at": _iso(at),
           "response_id": event["response_id"], "reason": event["reason"]}
    if not isinstance(stats, dict):  # recorded before graph-ingest reported its counts
        return {**run, "severity": "info", "flags": [], "note": "no counts recorded for this run"}
    before, after = stats.get("before") or {}, stats.get("after") or {}
    declared = {"declared_entities": int(stats.get("declared_entities", 0)),
                "declared_relations": int(stats.get("declared_relations", 0))}
    # what was written is what the graph should have grown by: triples held for review or rejected add nothing
    # (recorded before graph-ingest reported them: all that was declared)
    entities = int(stats.get("written_entities", declared["declared_entities"]))
    relations = int(stats.get("written_relations", declared["declared_relations"]))
    known_before = int(before.get("entities", 0))  # the dataset's baseline: it may already hold this many
    drift = compute_drift(entities, relations,
                          int(after.get("entities", 0)) - known_before,
                          int(after.get("relations", 0)) - int(before.get("relations", 0)),
                          shrank=int(after.get("entities", 0)) < known_before,
                          threshold=cfg.threshold, min_declared=cfg.min_declared,
                          expected_new_entities=max(entities - known_before, 0))
    severity, lost = unwritten(declared["declared_relations"], relations, accounted)
    drift["flags"] += lost
    drift["severity"] = worst(drift["severity"], severity) if lost else drift["severity"]
    not_written = declared["declared_relations"] - relations
    return {**run, **drift, "written_entities": entities, "written_relations": relations, **declared,
            "not_written_relations": not_written, "before": before, "after": after}


def _import_run(event: dict[str, Any], created: dict[str, Any] | None, at: datetime, tenant: str,
                cfg: DriftSettings) -> dict[str, Any]:
    details = event.get("details") or {}
    summary = ((created or {}).get("details") or {}).get("summary") or {}
    declared_e = int(summary.get("entities_added", 0)) + int(summary.get("entities_unchanged", 0))
    declared_r = sum(int(summary.get(k, 0)) for k in ("relations_added", "relations_changed",
                                                       "relations_conflicting", "relations_unchanged"))
    drift = compute_drift(declared_e, declared_r, int(details.get("entities_created", 0)),
                          int(details.get("relations_written", 0)), threshold=cfg.threshold,
                          min_declared=cfg.min_declared,
                          expected_new_entities=int(summary.get("entities_added", 0)) if created else None)
    return {"id": f"import:{event['subject']}", "kind": "knowledge-import", "dataset": f"{GRAPH}{tenant}",
            "tenant": tenant, "created_at": event.get("created_at"), "recorded_at": _iso(at),
            "response_id": event["subject"], "reason": event["reason"],
            **drift, "declared_from": "bundle" if created else "unknown (creation outside the window)"}


class Runs:
    def __init__(self, store: AuditStore, cfg: DriftSettings) -> None:
        self.store, self.cfg = store, cfg

    async def scan(self, hours: float, tenant: str | None = None, *, owns: Callable[[str], bool] = lambda _: True,
                   keep: int = 0, pick: Callable[[dict[str, Any]], bool] = lambda _: True,
                   answer: str | None = None) -> Scan:
        """One pass over the runs recorded in the last `hours` of `tenant` (all: None) whose tenant the caller `owns`,
        with one event in memory at a time (RUNS): the summary in total and per dataset, each dataset's graph
        counters, and the `keep` newest runs that `pick` takes (newest by when their producer made the event: records
        of different partitions are recorded in any order). `answer`: only the events of that answer or change set."""
        pool = self.store.pool
        found = Scan(keep)
        accounted = Counter({r["response_id"]: r["n"] for r in await pool.fetch(
            ACCOUNTED, hours, ["conflict_rejected", "quarantined"], tenant, answer)})
        created: dict[str, dict[str, Any]] = {}
        for row in await pool.fetch(CREATED, hours, tenant, answer):  # recorded before or after its apply
            if owns(row["tenant_id"]):
                event = json.loads(row["event"])
                created[event["subject"]] = event
                found.graphs.setdefault(f"{GRAPH}{row['tenant_id']}", Counter())  # a graph of the window
        for row in await pool.fetch(COUNTED, hours, CONFLICTS, tenant, answer):
            if owns(row["tenant_id"]):
                found.graphs[f"{GRAPH}{row['tenant_id']}"][row["action"]] += row["n"]
        last = None
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for row in conn.cursor(RUNS, hours, ["ingested", "knowledge_import_applied"], tenant, answer,
                                         prefetch=PREFETCH):
                if row["run"] == last or not owns(row["tenant_id"]):  # a redelivery sorts next to its first
                    continue
                last = row["run"]
                event, at, who = json.loads(row["event"]), row["recorded_at"], row["tenant_id"]
                found.add(_ingest_run(event, at, who, self.cfg, accounted[event["response_id"]])
                          if event.get("action") == "ingested"
                          else _import_run(event, created.get(event["subject"]), at, who, self.cfg), pick)
        return found

    async def summary(self, hours: float) -> dict[str, Any]:
        """The window's summary behind the metrics (moe_data_health_runs)."""
        return (await self.scan(hours)).total.summary(hours)


@dataclass
class Tally:
    severities: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)

    def add(self, run: dict[str, Any]) -> None:
        self.severities[run["severity"]] += 1
        self.flags.update(run.get("flags", []))

    def summary(self, hours: float) -> dict[str, Any]:
        return _summary(self.severities, self.flags, hours)


@dataclass
class Scan:
    """What one pass over a window found: the summary of every run and of each dataset's, each dataset's graph
    counters, and the `keep` newest runs taken (a heap of (when, id, run))."""

    keep: int
    total: Tally = field(default_factory=Tally)
    datasets: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    graphs: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    _newest: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, run: dict[str, Any], pick: Callable[[dict[str, Any]], bool]) -> None:
        self.total.add(run)
        self.datasets[run["dataset"]].add(run)
        counters = self.graphs[run["dataset"]]
        counters["runs"] += 1
        counters["entities_added"] += max(run.get("delta_entities", 0), 0)
        counters["relations_added"] += max(run.get("delta_relations", 0), 0)
        counters["relations_declared"] += run.get("declared_relations", 0)
        if self.keep and pick(run):
            item = (run["created_at"] or run["recorded_at"], run["id"], run)  # ids are unique
            if len(self._newest) < self.keep:
                heapq.heappush(self._newest, item)
            else:
                heapq.heappushpop(self._newest, item)

    def newest(self) -> list[dict[str, Any]]:
        """The runs kept, newest first."""
        return [run for *_, run in sorted(self._newest, key=lambda i: i[:2], reverse=True)]

    def graph_summaries(self) -> dict[str, dict[str, Any]]:
        return {name: _graph_summary(c) for name, c in self.graphs.items()}


def _graph_summary(c: Counter[str]) -> dict[str, Any]:
    declared = c["relations_declared"]
    conflicts = c["conflict_rejected"] + c["conflict_recorded"]
    return {"runs": c["runs"], "entities_added": c["entities_added"], "relations_added": c["relations_added"],
            "conflicts_rejected": c["conflict_rejected"], "conflicts_recorded": c["conflict_recorded"],
            "quarantined": c["quarantined"],
            "conflict_rate": round(conflicts / declared, 3) if declared else None,
            "quarantine_rate": round(c["quarantined"] / declared, 3) if declared else None}


def _summary(severities: Counter[str], flags: Counter[str], hours: float) -> dict[str, Any]:
    runs = sum(severities.values())
    overall = "ok"
    for severity in severities:
        overall = worst(overall, severity)
    return {"window_hours": hours, "runs": runs, "severity": overall if runs else "ok",
            "by_severity": {s: severities.get(s, 0) for s in SEVERITIES},
            "by_flag": {f: flags.get(f, 0) for f in FLAGS}}
