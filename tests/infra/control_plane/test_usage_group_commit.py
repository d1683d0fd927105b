"""Usage charges written together (control_plane.usage.writes, UsageStore.record_many) on the real Postgres, as the
control plane's role: charges that arrive together go out in one statement, each once per response id (a charge
recorded before, or twice in the batch, changes nothing), and a write Postgres does not take fails every charge
of the batch, as a transient error (each is redelivered), after which they are written once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from control_plane.usage.recorder import UsageRecorder
from moe_core.access.usage_store import UsageStore
from moe_core.contracts import UsageCharged, deadline_in

pytestmark = pytest.mark.infra


@pytest.fixture
async def usage(infra: dict[str, str]) -> AsyncIterator[UsageStore]:
    store = await UsageStore.connect(infra["postgres-control-plane"])  # the usage rows' writer: the control plane
    try:
        yield store
    finally:
        await store.close()


def _recorder(store: UsageStore) -> UsageRecorder:
    async def opened() -> UsageStore:
        return store

    return UsageRecorder(opened, linger_s=0.5)  # charges arriving within half a second share a statement


def _charge(key: str, rid: str, prompt: int, completion: int) -> UsageCharged:
    return UsageCharged(response_id=rid, tenant_id="t-group", deadline_at=deadline_in(30), key_id=key,
                        mode="moe-orchestrator", model="moe-orchestrator", prompt_tokens=prompt,
                        completion_tokens=completion, cost_micros=prompt + completion, outcome="answered",
                        settled_by="owner")


async def _written(usage: UsageStore, key: str) -> tuple[list[tuple[str, int]], list[tuple[int, int, int, int]]]:
    rows = await usage.pool.fetch("SELECT response_id, prompt_tokens FROM usage_requests WHERE key_id = $1 "
                                  "ORDER BY response_id", key)
    daily = await usage.pool.fetch("SELECT requests, prompt_tokens, completion_tokens, cost_micros FROM usage_daily "
                                   "WHERE key_id = $1", key)
    return [(r["response_id"], r["prompt_tokens"]) for r in rows], [tuple(r) for r in daily]


async def test_charges_arriving_together_are_one_statement_and_each_is_written_once(usage: UsageStore) -> None:
    key = f"k{uuid.uuid4().hex[:10]}"
    recorder = _recorder(usage)
    assert await recorder.record(_charge(key, f"{key}-0", 10, 1))  # recorded before the batch
    before = recorder.writes.writes
    batch = [_charge(key, f"{key}-{i}", 10 * i, i) for i in range(1, 5)]
    repeats = [_charge(key, f"{key}-0", 99, 99),  # recorded before: nothing changes
               _charge(key, f"{key}-2", 77, 77)]  # twice in the batch: the first one counts
    added = await asyncio.gather(*(recorder.record(c) for c in [*batch, *repeats]))
    assert added == [True, True, True, True, False, False]
    assert recorder.writes.writes == before + 1  # one statement for the six
    rows, daily = await _written(usage, key)
    assert rows == [(f"{key}-{i}", 10 * i if i else 10) for i in range(5)]
    assert daily == [(5, 10 + 10 + 20 + 30 + 40, 1 + 1 + 2 + 3 + 4, 11 + 11 + 22 + 33 + 44)]

    # delivered again, all of them (the consumer's commit was lost): nothing changes
    assert await asyncio.gather(*(recorder.record(c) for c in batch)) == [False] * 4
    assert await _written(usage, key) == (rows, daily)


async def test_a_write_postgres_does_not_take_fails_every_charge_of_the_batch_and_they_are_redelivered(
        usage: UsageStore, infra: dict[str, str]) -> None:
    key = f"k{uuid.uuid4().hex[:10]}"
    gone = await UsageStore.connect(infra["postgres-control-plane"])
    await gone.close()  # Postgres out of reach for this store
    batch = [_charge(key, f"{key}-{i}", i, i) for i in range(3)]
    failing = _recorder(gone)
    failed = await asyncio.gather(*(failing.record(c) for c in batch), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed), failed  # transient: each record redelivered
    assert failing.writes.writes == 1  # one statement, refused, for the three
    assert await _written(usage, key) == ([], [])

    recorder = _recorder(usage)  # the redelivered charges
    assert await asyncio.gather(*(recorder.record(c) for c in batch)) == [True] * 3
    rows, daily = await _written(usage, key)
    assert [r for r, _ in rows] == [c.response_id for c in batch]
    assert daily == [(3, 3, 3, 6)]


async def test_a_charge_postgres_refuses_fails_alone_and_the_rest_of_its_batch_is_written(
        usage: UsageStore) -> None:
    key = f"k{uuid.uuid4().hex[:10]}"
    recorder = _recorder(usage)
    batch = [_charge(key, f"{key}-{i}", i, i) for i in range(3)]
    batch[1].prompt_tokens = 2 ** 63  # out of bigint's range: refused (the consumer dead-letters it)
    twice = _charge(key, f"{key}-1", 1, 1)  # the refused one's repeat in the same batch
    outcomes = await asyncio.gather(*(recorder.record(c) for c in [*batch, twice]), return_exceptions=True)
    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], Exception) and not isinstance(outcomes[1], ConnectionError)
    assert isinstance(outcomes[3], Exception) and not isinstance(outcomes[3], ConnectionError)
    rows, daily = await _written(usage, key)
    assert rows == [(f"{key}-0", 0), (f"{key}-2", 2)]
    assert daily == [(2, 2, 2, 4)]


async def test_a_charge_alone_is_written_as_before(usage: UsageStore) -> None:
    key = f"k{uuid.uuid4().hex[:10]}"
    recorder = UsageRecorder(_recorder(usage).store)  # no linger: alone unless a write is in flight
    assert await recorder.record(_charge(key, f"{key}-a", 5, 2))
    assert not await recorder.record(_charge(key, f"{key}-a", 5, 2))
    assert await _written(usage, key) == ([(f"{key}-a", 5)], [(1, 5, 2, 7)])
