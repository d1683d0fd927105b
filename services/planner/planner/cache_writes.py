"""Group commit of semantic-cache writes: one Chroma upsert carries every entry that arrived during the linger
before it (each batch lingers, up to `max_batch` entries), or, without a linger, while the previous upsert was
in flight (the answers' handlers write their entries concurrently). N answers cost one request instead of N (Chroma
spends about 15-18 ms of CPU per upsert call and about 1 ms per entry of a batched one, measured on the bench
machine: 18.2 ms per entry upserted alone, 3.2 in batches of 8, 1.3 in batches of 32; docs/performance.md). The
write is behind the request path (the cache topic is the source of truth and every replica's index reads it at
once), so waiting `linger_s` before a write costs no request anything and lets the concurrent answers share the
call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass
class Entry:
    key: str
    embedding: list[float]
    document: str
    metadata: dict[str, Any]


class GroupUpserts:
    """Per collection: the first writer upserts; writers that arrive meanwhile wait and go out together."""

    def __init__(self, max_batch: int = 64, linger_s: float = 0.0) -> None:
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._pending: dict[int, list[tuple[Entry, asyncio.Future[None]]]] = {}
        self._busy: set[int] = set()
        self._full: dict[int, asyncio.Event] = {}  # set when a lingering batch reached max_batch

    async def _linger(self, slot: int) -> None:
        """Wait `linger_s` for the other consumers' entries to join the batch, or until it is full."""
        if self.linger_s <= 0 or len(self._pending[slot]) >= self.max_batch:
            return
        full = self._full[slot] = asyncio.Event()
        try:
            await asyncio.wait_for(full.wait(), self.linger_s)
        except TimeoutError:
            pass
        finally:
            self._full.pop(slot, None)

    async def upsert(self, collection: Any, entry: Entry) -> None:
        slot = id(collection)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._pending.setdefault(slot, [])
        queue.append((entry, done))
        if len(queue) >= self.max_batch and slot in self._full:
            self._full[slot].set()  # the lingering leader need not wait any longer
        if slot not in self._busy:
            self._busy.add(slot)
            try:
                while self._pending.get(slot):
                    # Every batch lingers until it is full, the first as the ones that arrived during a write: on
                    # busy cores a write takes long enough for one or two entries to arrive, and batches shrank
                    # to two entries (python -m bench.cache_write_costs: 2.1 per call, 5.4 ms of Chroma CPU each).
                    await self._linger(slot)
                    queue = self._pending[slot]
                    self._pending[slot] = queue[self.max_batch:]
                    await self._write(collection, queue[:self.max_batch])
            finally:  # cancelled mid-write: nobody is left waiting for a leader that is gone
                if done.done() and not done.cancelled():
                    done.exception()  # retrieved here: the leader raises its own error, not this one
                self._busy.discard(slot)
                for _, waiting in self._pending.pop(slot, []):
                    if not waiting.done():
                        waiting.set_exception(ConnectionError("the cache write was interrupted"))
        await done

    @staticmethod
    async def _write(collection: Any, batch: list[tuple[Entry, asyncio.Future[None]]]) -> None:
        latest = {entry.key: entry for entry, _ in batch}  # one id once per call (the last write wins)
        entries = list(latest.values())
        try:
            await collection.upsert(ids=[e.key for e in entries], embeddings=[e.embedding for e in entries],
                                    documents=[e.document for e in entries], metadatas=[e.metadata for e in entries])
        except BaseException as exc:  # every writer of the batch sees the failure (its handler retries or not)
            failure = exc if isinstance(exc, Exception) else ConnectionError("the cache write was interrupted")
            for _, done in batch:
                if not done.done():
                    done.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)


class SharedChecks:
    """What the writer of an entry asks Redis after its upsert (is the hour's sweep due? was the entry rated before it
    was stored?) and the pending entry it deletes (stored: a redelivered answer is not stored again), asked once for
    the writers of a batch: they resume together when its upsert returns, and the first waits one turn of the loop
    for the others to join. One round trip per batch instead of one per entry (issue 52); each entry's flag is still
    read after its upsert, and one writer at most is told the sweep is due."""

    def __init__(self, redis: Any, sweep_key: str, flag_prefix: str, pending_prefix: str) -> None:
        self.redis, self.sweep_key = redis, sweep_key
        self.flag_prefix, self.pending_prefix = flag_prefix, pending_prefix
        self._joining: dict[str, list[asyncio.Future[tuple[bool, Any]]]] | None = None

    async def ask(self, key: str) -> tuple[bool, Any]:
        """(sweep due, for this writer; the entry's early flag or None)."""
        answer: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        if self._joining is not None:
            self._joining.setdefault(key, []).append(answer)
            return await answer
        joining = self._joining = {key: [answer]}
        try:
            try:
                await asyncio.sleep(0)  # the batch's other writers, woken with this one, join here
            finally:
                self._joining = None
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self.sweep_key, "1", nx=True, ex=3600)
            pipe.mget([f"{self.flag_prefix}:{k}" for k in joining])
            pipe.delete(*(f"{self.pending_prefix}:{k}" for k in joining))
            due, flags, _ = await pipe.execute()
        except BaseException as exc:  # each writer fails (its message is redelivered); this one raises
            for future in (f for futures in joining.values() for f in futures if f is not answer):
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("interrupted"))
            raise
        flag = dict(zip(joining, flags, strict=True))
        for i, (k, future) in enumerate((k, f) for k, futures in joining.items() for f in futures):
            if not future.done():
                future.set_result((bool(due) and i == 0, flag[k]))
        return answer.result()
