"""The cache check's counts are counted by Postgres (codex_lineage.drift.cache_counts), on the real audit store: the
first answer of each request that did not fail, in the window or the baseline its producer made it in, its first
rating; replays, failed answers, redeliveries and second ratings count nothing. codex-lineage's memory for them is
the counts', not the answers' (issue 52: it held every answer and rating of the window and its baseline, ~0.7 KB
each, at every evaluation)."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from codex_lineage.drift.feedback_signals import Signals
from codex_lineage.drift.signals import SignalSettings
from moe_core.audit.records import from_kafka, message_types
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from tests.lineage.chain_store import TOPICS, audit_schema_fixture, store_for  # noqa: F401

pytestmark = pytest.mark.infra
OFFSETS = count()
NOW = datetime.now(UTC)


def _record(topic: str, kind: str, tenant: str, rid: str, at: datetime, **payload: Any) -> Any:
    body = {"response_id": rid, "tenant_id": tenant, "created_at": at.isoformat(), **payload}
    return from_kafka(topic, 0, next(OFFSETS), int(NOW.timestamp() * 1000), rid.encode(), json.dumps(body).encode(),
                      {"x-moe-producer": "planner", "x-moe-message-type": kind}, message_types(TOPICS))


async def _answers(store: AuditStore, tenant: str, n: int, at: datetime, hit: bool = True, **extra: Any) -> list[str]:
    rids = [f"r-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    for first in range(0, n, 200):
        await store.append_many([(_record(TOPICS.answers, "Answer", tenant, rid, at, content="a", cache_hit=hit,
                                          **extra), []) for rid in rids[first:first + 200]])
    return rids


async def _rate(store: AuditStore, tenant: str, rid: str, rating: int) -> None:
    await store.append_many([(_record(TOPICS.feedback, "Feedback", tenant, rid, NOW - timedelta(hours=1),
                                      rating=rating, models_used=[]), [])])


async def test_the_counts_are_the_first_answer_and_rating_of_each_request(infra: dict[str, str],
                                                                          audit_schema: str) -> None:
    store = await store_for(infra["postgres"], audit_schema, Signer.ephemeral())
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    try:
        hits = await _answers(store, tenant, 4, NOW - timedelta(hours=2))
        await _answers(store, tenant, 2, NOW - timedelta(hours=3), hit=False)
        await _answers(store, tenant, 3, NOW - timedelta(hours=48))  # the baseline
        await _answers(store, tenant, 2, NOW - timedelta(hours=2), error={"message": "failed"})
        await _answers(store, tenant, 2, NOW - timedelta(hours=2), replay_of="r-original")
        await store.append_many([(_record(TOPICS.answers, "Answer", tenant, hits[0], NOW - timedelta(hours=2),
                                          content="again", cache_hit=False), [])])  # redelivered: the first counts
        for rid, rating in ((hits[0], 1), (hits[0], 5), (hits[1], 2), (hits[2], 5)):  # hits[0]'s second: ignored
            await _rate(store, tenant, rid, rating)
        [found] = await Signals(store, SignalSettings()).cache(24, tenant=tenant)
        assert (found["window"], found["baseline"]) == (
            {"answers": 6, "hits": 4, "hit_rate": 0.667, "rated_hits": 3, "false_hits": 2, "false_hit_rate": 0.667},
            {"answers": 3, "hits": 3, "hit_rate": 1.0, "rated_hits": 0, "false_hits": 0, "false_hit_rate": None}), found
    finally:
        await store.close()


async def test_the_evaluations_memory_does_not_follow_the_answers(infra: dict[str, str], audit_schema: str) -> None:
    """The traced peak of the cache check over 2,000 answers is that of one over 200: within 100 bytes an answer
    (holding them was ~415 bytes each). tracemalloc traces the whole worker process, so another test's leftover
    thread can allocate during one evaluation (a CI run saw 88 KB so); each size's peak is the least of three."""
    store = await store_for(infra["postgres"], audit_schema, Signer.ephemeral())
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    peaks = []
    try:
        for n in (200, 1800):  # 200, then 2,000 answers in the window
            await _answers(store, tenant, n, NOW - timedelta(hours=2))
            least = None
            for _ in range(3):
                tracemalloc.start()
                try:
                    [found] = await Signals(store, SignalSettings()).cache(24, tenant=tenant)
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
                least = peak if least is None else min(least, peak)
            peaks.append(least)
        assert found["window"]["answers"] == 2000
        assert (peaks[1] - peaks[0]) / 1800 < 100, peaks
    finally:
        await store.close()
