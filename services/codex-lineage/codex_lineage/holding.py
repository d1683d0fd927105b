"""codex-lineage holds its place while its store is down: a batch it could not store durably is never committed.

The consumer's offsets are committed only after a batch returns (FastStream's NACK_ON_ERROR: an exception seeks each
partition back to the batch's first record, nothing is committed). Only a record the store *refused* (it answered,
and said no) goes to the dead-letter topic and is passed; a record the store could not be asked about is held:

- the errors of a store that is down, shutting down, starting up, full, read-only or out of connections
  (`STORE_DOWN`), and the fleet's transient errors, hold the batch;
- any other error is put to the store with a probe (`SELECT 1`): if the probe fails too, the record was not the
  cause, and the batch is held (`StoreUnavailable`) rather than dead-lettered.

A held batch is fetched again after a growing pause (`Hold`: 0.5 s doubling to `max_s`), so a long outage costs
a fetch every few seconds, not a busy loop; the first batch stored resets it. Records of the held batch stored
before the outage are recognised on redelivery by topic, partition and offset (AuditStore: stored once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg import exceptions as pg

from moe_core.runtime.bus import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

STORE_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection lost, refused, does not exist
    pg.OperatorInterventionError,  # class 57: shutting down (57P01), starting up (57P03), crash, cancelled
    pg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    pg.ReadOnlySQLTransactionError,  # a standby (failover under way): it cannot write
    pg.TransactionRollbackError,  # class 40: serialization failure, deadlock: try again
)  # anything else ("connection is closed", "pool is closing", a role that may not log in now): the probe decides
HOLD_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, *STORE_DOWN)


class StoreUnavailable(Exception):
    """A record could not be stored and the store does not answer either: the batch is held, not dead-lettered."""


HELD: tuple[type[BaseException], ...] = (*HOLD_ERRORS, StoreUnavailable)  # what a held batch raises


async def store_answers(pool: asyncpg.Pool, timeout_s: float = 5.0) -> bool:
    """The store answers a probe now (False on any failure: it is the store's answer that is asked for)."""
    try:
        await pool.fetchval("SELECT 1", timeout=timeout_s)
    except Exception as exc:
        log.warning("the audit store does not answer (%r)", exc)
        return False
    return True


class Hold:
    """The pause before a held batch is fetched again: 0.5 s, doubling up to `max_s`; reset by a stored batch."""

    def __init__(self, max_s: float = 15.0, first_s: float = 0.5) -> None:
        self.first_s, self.max_s = first_s, max_s
        self.next_s = first_s
        self.held = 0  # batches held in a row (0: the store is taking records)

    def pause(self) -> float:
        pause, self.next_s = self.next_s, min(self.max_s, self.next_s * 2)
        self.held += 1
        return pause

    def reset(self) -> None:
        if self.held:
            log.warning("the audit store takes records again after %d held batches", self.held)
        self.next_s, self.held = self.first_s, 0


Recording = Callable[[list[Any]], Awaitable[None]]
DeadLetter = Callable[[Any, Exception], Awaitable[None]]


class HeldBatches:
    """A consumer batch stored together (`record_batch`); one bad record: the others stored one by one (`record`)
    and it dead-lettered with the reason (`dead_letter`), only once the store (`pool`) has answered a probe. While
    the store is down the batch raises (held: FastStream rewinds, nothing is committed) after `hold`'s pause."""

    def __init__(self, record_batch: Recording, record: Callable[[Any], Awaitable[None]], pool: asyncpg.Pool,
                 dead_letter: DeadLetter, hold: Hold) -> None:
        self.record_batch, self.record, self.pool = record_batch, record, pool
        self.dead_letter, self.hold = dead_letter, hold

    async def store(self, raws: list[Any]) -> None:
        try:
            await self._store(raws)
        except HELD as exc:
            pause = self.hold.pause()
            log.warning("a batch of %d records was not stored (%r): held, nothing committed, fetched again in "
                        "%.1f s", len(raws), exc, pause)
            await asyncio.sleep(pause)
            raise
        self.hold.reset()

    async def _store(self, raws: list[Any]) -> None:
        try:
            await self.record_batch(raws)
        except HOLD_ERRORS:
            raise
        except Exception:
            log.exception("could not record a batch; recording its messages one by one")
            for raw in raws:
                await self._store_one(raw)

    async def _store_one(self, raw: Any) -> None:
        try:
            await self.record(raw)
        except HOLD_ERRORS:
            raise
        except Exception as exc:  # never loop on a record that cannot be stored; never pass one not asked about
            if not await store_answers(self.pool):
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
            log.exception("could not record a message: dead-lettered")
            await self.dead_letter(raw, exc)
