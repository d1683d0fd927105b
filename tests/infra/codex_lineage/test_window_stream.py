"""The periodic evaluations read the window as a stream, on the real audit store (issue 52): the data-health
summary behind the metrics (codex_lineage.drift.runs.Runs.summary) and the data-class rule (compliance
data_class_flow) hold one run or one request at a time. Both held the whole window: a soak of 5,600 requests sent
codex-lineage from ~155 to 282 MB at the evaluation, and a day at the fleet's rate would be gigabytes. The summary
is the one the runs listed by the API give, redeliveries, accounted triples and imports included; the data-class
rule reads only the tenants of the classes it checks."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import count
from types import SimpleNamespace
from typing import Any

import pytest

from codex_lineage.compliance.checks_classes import data_class_flow
from codex_lineage.drift.flags import FLAGS
from codex_lineage.drift.runs import DriftSettings, Runs
from moe_core.audit.records import from_kafka, message_types
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.knowledge.graph.audit import audit_event
from moe_core.policy.classes import parse
from tests.lineage.chain_store import TOPICS, audit_schema_fixture, store_for  # noqa: F401

pytestmark = pytest.mark.infra
OFFSETS = count()
BOOK = """
version: 1
classes: {public: {}, internal: {}, personal: {}}
default_class: internal
tenants: {%s: personal, %s: public}
allowed:
  personal: {models: ["s/ours/*"]}
  internal: {models: ["s/ours/*"]}
"""


def _record(event: Any) -> Any:
    body = event.model_dump(mode="json")
    return from_kafka(TOPICS.audit, 0, next(OFFSETS), int(datetime.now(UTC).timestamp() * 1000),
                      body["response_id"].encode(), json.dumps(body).encode(),
                      {"x-moe-producer": "graph-ingest", "x-moe-message-type": "AuditEvent"}, message_types(TOPICS))


def _ingested(tenant: str, rid: str, written: int, before: int = 10) -> Any:
    stats = {"declared_entities": 2, "declared_relations": 2, "written_relations": written,
             "written_entities": 2 if written else 0, "before": {"entities": before, "relations": before},
             "after": {"entities": before + (2 if written else 0), "relations": before + written}}
    return audit_event(None, actor="graph-ingest", action="ingested", subject=rid, tenant=tenant, response_id=rid,
                       reason=f"{written} of 2 triples written", details={"stats": stats})


async def _answers(store: AuditStore, tenant: str, n: int, written: int = 2) -> list[str]:
    rids = [f"r-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    for first in range(0, n, 200):
        await store.append_many([(_record(_ingested(tenant, rid, written)), []) for rid in rids[first:first + 200]])
    return rids


async def test_one_pass_gives_the_summary_the_runs_and_one_run(infra: dict[str, str], audit_schema: str) -> None:
    store = await store_for(infra["postgres"], audit_schema, Signer.ephemeral())
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    try:
        ok = await _answers(store, tenant, 3)
        lost = await _answers(store, tenant, 2, written=0)  # two answers that wrote nothing: flagged
        accounted = (await _answers(store, tenant, 1, written=1))[0]  # one triple held for review: accounted
        await store.append_many([(_record(audit_event(None, actor="graph-ingest", action="quarantined",
                                                      subject="x", tenant=tenant, response_id=accounted)), [])])
        await store.append_many([(_record(_ingested(tenant, ok[0], 0)), []),  # redelivered: the first counts
                                 (_record(_ingested(tenant, lost[0], 2)), [])])
        summary = {"entities_added": 4, "entities_unchanged": 0, "relations_added": 4}
        cs = f"cs-{uuid.uuid4().hex[:8]}"
        applied = audit_event(None, actor="key:k1", action="knowledge_import_applied", subject=cs, tenant=tenant,
                              response_id=cs, details={"entities_created": 1, "relations_written": 0})
        created = audit_event(None, actor="key:k1", action="knowledge_import_created", subject=cs, tenant=tenant,
                              response_id=cs, details={"summary": summary})
        await store.append_many([(_record(applied), [])])
        await store.append_many([(_record(created), [])])  # recorded after its apply (another partition)
        neighbour = f"t-{uuid.uuid4().hex[:8]}"
        await _answers(store, neighbour, 2, written=0)
        runs = Runs(store, DriftSettings())
        streamed = await runs.summary(24)
        assert streamed == {"window_hours": 24, "runs": 9, "severity": "crit",
                            "by_severity": {"ok": 4, "info": 0, "warn": 1, "crit": 4},
                            "by_flag": {**dict.fromkeys(FLAGS, 0), "entity_dedup_suppressed": 1,
                                        "nothing_written": 4}}, streamed
        everything = await runs.scan(24, keep=50)  # what the API answers, in one pass
        listed = everything.newest()
        assert everything.total.summary(24) == streamed and len(listed) == 9
        assert everything.graph_summaries() == {
            f"graph/{tenant}": {"runs": 7, "entities_added": 9, "relations_added": 7, "conflicts_rejected": 0,
                                "conflicts_recorded": 0, "quarantined": 1, "conflict_rate": 0.0,
                                "quarantine_rate": 0.062},
            f"graph/{neighbour}": {"runs": 2, "entities_added": 0, "relations_added": 0, "conflicts_rejected": 0,
                                   "conflicts_recorded": 0, "quarantined": 0, "conflict_rate": 0.0,
                                   "quarantine_rate": 0.0}}
        assert (await runs.scan(24, keep=3)).newest() == listed[:3]  # the newest three of the heap
        flagged = await runs.scan(24, keep=50, pick=lambda r: r["severity"] != "ok")
        assert flagged.newest() == [r for r in listed if r["severity"] != "ok"] and len(flagged.newest()) == 5
        own = await runs.scan(24, owns=lambda t: t == tenant, keep=50)  # a tenant admin's view
        assert own.newest() == [r for r in listed if r["tenant"] == tenant] and len(own.newest()) == 7
        assert own.total.summary(24)["by_severity"] == {"ok": 4, "info": 0, "warn": 1, "crit": 2}
        assert set(own.graph_summaries()) == {f"graph/{tenant}"}
        alone = await runs.scan(24, neighbour)
        assert alone.total.summary(24)["by_severity"] == {"ok": 0, "info": 0, "warn": 0, "crit": 2}
        assert alone.datasets[f"graph/{neighbour}"].summary(24)["runs"] == 2
        by_id = {r["id"]: r for r in listed}
        assert by_id[f"ingest:{ok[0]}"]["written_relations"] == 2  # the first of the redelivered two
        assert by_id[f"ingest:{accounted}"]["severity"] == "ok"  # its missing triple is accounted for
        assert by_id[f"import:{cs}"]["declared_from"] == "bundle", by_id[f"import:{cs}"]  # read after its apply
        assert {by_id[f"ingest:{rid}"]["severity"] for rid in lost} == {"crit"}
        for run_id in (f"ingest:{ok[0]}", f"ingest:{accounted}", f"import:{cs}"):  # one run's page reads its events
            one = await runs.scan(24, keep=1, pick=lambda r, wanted=run_id: r["id"] == wanted,
                                  answer=run_id.partition(":")[2])
            assert one.newest() == [by_id[run_id]] and one.total.summary(24)["runs"] == 1, run_id
    finally:
        await store.close()


def _lineage(rid: str, model: str) -> dict[str, Any]:
    return {"eventType": "COMPLETE", "eventTime": datetime.now(UTC).isoformat(), "job": {"name": "expert-worker"},
            "run": {"runId": str(uuid.uuid4()), "facets": {"moe_model": {"server": "s", "model": model}}},
            "inputs": [{"namespace": "kafka://k", "name": f"{rid}.tasks"}], "outputs": []}


async def _requests(store: AuditStore, tenant: str, n: int, model: str) -> list[str]:
    rids = [f"r-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    for rid in rids:  # two events of one request, as a stage's START and COMPLETE
        await store.add_events([_lineage(rid, model), _lineage(rid, "ours/x")], response_id=rid, tenant_id=tenant,
                               source_ts=None)
    return rids


async def test_the_data_class_rule_reads_only_the_listed_classes_tenants(infra: dict[str, str],
                                                                        audit_schema: str) -> None:
    store = await store_for(infra["postgres"], audit_schema, Signer.ephemeral())
    clinic, shop, other = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(3))
    book = parse(BOOK % (clinic, shop), "test")
    src = SimpleNamespace(store=store, classes=lambda: book)
    try:
        flagged = sorted(await _requests(store, clinic, 3, "theirs/big"))
        await _requests(store, clinic, 2, "ours/small")
        await _requests(store, shop, 2, "theirs/big")  # public: no rule of its own
        await _requests(store, other, 2, "theirs/big")  # internal, the default class
        personal = await data_class_flow(src, {"classes": ["personal"]})  # type: ignore[arg-type]
        assert (personal.status, personal.evidence["requests"], personal.evidence["flagged"]) == ("fail", 5, 3)
        assert [f["response_id"] for f in personal.evidence["findings"]] == flagged
        assert personal.evidence["findings"][0]["findings"] == ["model s/theirs/big is not allowed for personal data"]
        internal = await data_class_flow(src, {"classes": ["internal"]})  # type: ignore[arg-type]
        assert (internal.evidence["requests"], internal.evidence["flagged"]) == (2, 2)  # the unnamed tenant only
        public = await data_class_flow(src, {"classes": ["public"]})  # type: ignore[arg-type]
        assert (public.status, public.evidence["requests"]) == ("pass", 2)  # no `allowed` for public: nothing flagged
        none = await data_class_flow(src, {"classes": ["personal"], "hours": 0})  # type: ignore[arg-type]
        assert none.status == "not_applicable"
    finally:
        await store.close()


async def _peak(evaluate: Callable[[], Awaitable[Any]]) -> int:
    """The least traced peak of three evaluations: tracemalloc traces the whole worker process, so another test's
    leftover thread can allocate during one."""
    least = None
    for _ in range(3):
        tracemalloc.start()
        try:
            await evaluate()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        least = peak if least is None else min(least, peak)
    assert least is not None
    return least


async def test_the_evaluations_memory_does_not_follow_the_window(infra: dict[str, str], audit_schema: str) -> None:
    """Each evaluation's traced peak over 2,400 runs or requests is that over 600 (both more than a cursor's fetch
    of PREFETCH rows): within 1 kB each, where holding the window cost 3.0 kB a run and 6.2 kB a request. Alone it
    stayed within 150 B; tracemalloc traces the whole worker, whose earlier tests' threads allocate while the longer
    evaluation runs (a CI run saw 233 B a run), so the bound is a third of what holding the window costs."""
    store = await store_for(infra["postgres"], audit_schema, Signer.ephemeral())
    clinic = f"t-{uuid.uuid4().hex[:8]}"
    src = SimpleNamespace(store=store, classes=lambda: parse(BOOK % (clinic, "nobody"), "test"))
    runs = Runs(store, DriftSettings())
    peaks: dict[str, list[int]] = {"summary": [], "classes": []}
    try:
        for n in (600, 1800):  # 600, then 2,400 in the window
            await _answers(store, clinic, n)
            await _requests(store, clinic, n, "ours/small")
            peaks["summary"].append(await _peak(lambda: runs.summary(24)))
            peaks["classes"].append(await _peak(
                lambda: data_class_flow(src, {"classes": ["personal"]})))  # type: ignore[arg-type]
        assert (await runs.summary(24))["runs"] == 2400
        classes = await data_class_flow(src, {"classes": ["personal"]})  # type: ignore[arg-type]
        assert (classes.status, classes.evidence["requests"]) == ("pass", 2400)
        for name, (small, large) in peaks.items():
            assert (large - small) / 1800 < 1000, (name, peaks)
    finally:
        await store.close()
