"""Answers of one tenant handled at once, as the runtime hands them to graph-ingest (up to MOE_CONSUMER_IN_FLIGHT
records in flight: moe_core.runtime.key_ordered), on the real Neo4j, OPA and Redis: every answer's triples are
written, each answer is audited once, and no write transaction is rolled back and run again. Two writes of one
tenant at once deadlocked in Neo4j on the tenant's GraphVersion node; the driver ran the loser again after about
a second, which at 8 requests at once cost about every second answer a second write (issue 52). Each run's counts
are the tenant's just before and after its own write, carried from the replica's previous write: its plan's count,
read before the other answers' writes, made every later write count the whole tenant again."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from graph_ingest.app import GraphIngest
from moe_core.knowledge.graph import GraphDB
from tests.graph.graph_ingest.conftest import AuditKept
from tests.graph.graph_ingest.test_learning_journey import ingest_event
from tests.graph.helpers import relations, titles

pytestmark = pytest.mark.infra

ROUNDS, AT_ONCE = 3, 8  # without the replica's one write at a time, 3-5 of 8 such writes were run twice


async def test_answers_handled_at_once_are_each_written_and_audited_once_and_no_write_runs_twice(
        ingest: GraphIngest, graph_db: GraphDB, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: Counter[str] = Counter()
    transaction = graph_db.transaction

    async def counting(work: Callable[[Any], Awaitable[Any]]) -> Any:
        attempts["transactions"] += 1

        async def attempt(tx: Any) -> Any:
            attempts["runs"] += 1  # the driver runs the work again after a transient error (a deadlock)
            return await work(tx)

        return await transaction(attempt)

    monkeypatch.setattr(graph_db, "transaction", counting)
    events = []
    for _ in range(ROUNDS):
        answers = []
        for _ in range(AT_ONCE):  # each answer teaches two facts about entities new to the tenant, as a bench answer
            m = uuid.uuid4().hex[:8]
            event = ingest_event(tenant, m, knowledge_type="technical", source_expert="technical")
            await ingest.memo.put_first(event.response_id, json.dumps(
                [{"subject": f"Frob {m}", "relation": "PART_OF", "object": f"Rack {m}", "confidence": 0.9},
                 {"subject": f"Frob {m}", "relation": "PART_OF", "object": f"Cluster {m}", "confidence": 0.9}]))
            answers.append(event)
        await asyncio.gather(*(ingest.on_ingest(e) for e in answers))
        events += answers

    assert len(set(titles(await relations(graph_db, tenant)))) == 2 * ROUNDS * AT_ONCE
    audit = ingest.bus
    assert isinstance(audit, AuditKept)
    ingested = [e for e in audit.events if e.action == "ingested"]
    assert Counter(e.response_id for e in ingested) == Counter(e.response_id for e in events)
    assert all(len(e.details["relations"]) == 2 for e in ingested)
    # each run's counts (codex-lineage's drift reads them) are the tenant's just before and after its own write, not
    # a "before" read ahead of the other answers' writes: each made 3 entities and 2 relations
    made = [{k: e.details["stats"]["after"][k] - e.details["stats"]["before"][k] for k in ("entities", "relations")}
            for e in ingested]
    assert made == [{"entities": 3, "relations": 2}] * len(events), made
    assert max(e.details["stats"]["after"]["entities"] for e in ingested) == 3 * len(events)
    assert attempts["transactions"] == ROUNDS * AT_ONCE
    assert attempts["runs"] == attempts["transactions"], attempts  # none rolled back and run again
