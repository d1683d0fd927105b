"""Many records of one partition in flight at once, in order per key (issue 29: hundreds of live streams).

A group subscriber's consumer hands FastStream one record at a time, and FastStream handles it before it fetches
the next: a stage whose handler waits on a model for a second handles one request per partition per second,
however idle its CPU. Here the consumer's loop only dispatches: each record is handled in a task of its own, up
to MOE_CONSUMER_IN_FLIGHT at once per subscription (the loop waits for a free place: back-pressure, not an
unbounded queue), and records with the same key (the response_id: one request's messages) strictly one after
the other, in partition order, as before. On a task topic (Consumes.per_task) the order is per task instead (the
key and the task-id header moe_core.runtime.bus stamps): a plan's two experts (or tools, or searches) share the
request's
key and partition, and each waited for the other's model call.

What stays as it was:
- the whole of FastStream's handling per record (the middlewares, the decoder, the acknowledgement) runs in the
  task, so tracing, the run clock, dead letters and metrics see one record as before;
- the committed offset never passes a record still being handled: the acknowledgement of a record only moves it
  to the lowest offset still in flight (moe_core.runtime.offset_commits.OffsetCommits.begin);
- a transient failure is retried in place after its backoff (moe_core.runtime.redelivery: the same attempts and dead
  letter) instead of seeking the partition back, which would fetch every later record again;
- a stop waits for the records being handled (MOE_SHUTDOWN_GRACE_S, every subscription of the service at once,
  before any of its consumers commits and leaves the group: moe_core.runtime.service): a record not started by then
  is fetched again by the next owner; one still being handled then is cancelled (`cancel`) and, never committed,
  handled again by the next owner.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from functools import partial
from typing import Any

from moe_core.contracts.headers import TASK_ID
from moe_core.runtime.offset_commits import RETRY, OffsetCommits

_ATTRIBUTE = "moe_key_ordered"


class KeyOrdered:
    """Installs itself as the subscriber's `consume_one`: the consumer loop's one call per record."""

    def __init__(self, subscriber: Any, commits: OffsetCommits, in_flight: int, per_task: Collection[str] = (),
                 handle: Callable[[Any], Awaitable[None]] | None = None) -> None:
        self.subscriber = subscriber
        self.per_task = frozenset(per_task)  # topics ordered by (key, the task-id header): a request's tasks at once
        self.commits = commits
        # places per topic (a service's consumer reads all its topics, moe_core.stage.consumer): a topic's backlog
        # takes no more places than its own consumer had; when they are all taken the loop waits, every topic with it
        self.places: defaultdict[str, asyncio.Semaphore] = defaultdict(partial(asyncio.Semaphore, in_flight))
        self._handle = handle or subscriber.consume_one  # FastStream's handling, or the stage's (stage.direct)
        self._last: dict[Any, asyncio.Task[None]] = {}  # per key: its latest record's task
        self.tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to running tasks
        subscriber.consume_one = self.dispatch
        setattr(subscriber, _ATTRIBUTE, self)

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel every record still in flight (after the shutdown grace); the tasks, to await their end."""
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        return tasks

    async def dispatch(self, raw: Any) -> None:
        await self.places[raw.topic].acquire()
        self.commits.begin(raw)
        key = raw.key
        if raw.topic in self.per_task and key is not None:
            key = (key, _task_id(raw))
        before = self._last.get(key) if key is not None else None
        task = asyncio.get_running_loop().create_task(self._run(raw, before))
        if key is not None:
            self._last[key] = task
        self.tasks.add(task)
        task.add_done_callback(partial(self._finished, key))

    async def _run(self, raw: Any, before: asyncio.Task[None] | None) -> None:
        try:
            if before is not None:
                await asyncio.wait({before})  # the key's earlier record first (whatever became of it)
            while True:
                setattr(raw, RETRY, False)
                await self._handle(raw)  # FastStream's handling; a stopped subscriber handles nothing
                if not getattr(raw, RETRY, False) or not self.subscriber.running:
                    return
        finally:
            self.places[raw.topic].release()

    def _finished(self, key: Any, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if key is not None and self._last.get(key) is task:
            del self._last[key]


def of(subscriber: Any) -> KeyOrdered | None:
    """The subscriber's KeyOrdered, if one is installed."""
    found = getattr(subscriber, _ATTRIBUTE, None)
    return found if isinstance(found, KeyOrdered) else None


def _task_id(raw: Any) -> bytes | None:
    """The record's task-id header (moe_core.runtime.bus stamps it on every task and result), if any."""
    return next((value for name, value in (raw.headers or ()) if name == TASK_ID), None)
