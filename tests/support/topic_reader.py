"""Reads topics of the real broker from the start (no group) and waits for messages that match."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from moe_core.runtime.kafka_clients import client_kwargs

T = TypeVar("T")


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer whose fetch may have timed out while the event loop was idle (synchronous tests
    run between the async ones): aiokafka then re-raises the fetch task's cancellation out of stop().
    Only a cancellation aimed at the caller propagates."""
    task = asyncio.current_task()
    try:
        await consumer.stop()
    except KafkaError:
        pass
    except asyncio.CancelledError:
        if task is not None and task.cancelling():
            raise


async def wait_until(changed: asyncio.Condition, found: Callable[[], T | None], timeout_s: float, failure: str) -> T:
    """The first value of `found()` that is not None, checked again whenever `changed` is notified; an
    AssertionError saying `failure` after `timeout_s`."""
    async def until() -> T:
        async with changed:
            while (hit := found()) is None:
                await changed.wait()
            return hit

    try:
        return await asyncio.wait_for(until(), timeout_s)
    except TimeoutError:
        raise AssertionError(failure) from None


class TopicReader:
    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.records: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(*self.topics, **client_kwargs(bootstrap=self.bootstrap), group_id=None,
                                          auto_offset_reset="earliest", enable_auto_commit=False,
                                          fetch_max_wait_ms=10, metadata_max_age_ms=1000)
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Wait for the reader to stop before closing the consumer; a slow broker at teardown is not a failure."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await self._task
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def _read(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            async with self._changed:
                self.records.append((record.topic, json.loads(record.value)))
                self._changed.notify_all()

    def on(self, topic: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        return [body for t, body in self.records if t == topic and (where is None or where(body))]

    async def wait(self, topic: str, where: Callable[[dict[str, Any]], bool] | None = None, count: int = 1,
                   timeout_s: float = 30) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            return found if len(found := self.on(topic, where)) >= count else None

        return await wait_until(self._changed, enough, timeout_s,
                                f"fewer than {count} matching messages on {topic} in {timeout_s}s")


async def keyed_records(bootstrap: str, topic: str, keys: list[str], want: int,
                        timeout_s: float = 30) -> list[dict[str, Any]]:
    """The JSON records of `topic` keyed by one of `keys`, read from the start (no group) until there are `want` of
    them or the time is up (e.g. a request's dead letters)."""
    wanted = {key.encode() for key in keys}
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap=bootstrap), auto_offset_reset="earliest",
                                group_id=None)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while len(found) < want and loop.time() < end:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [json.loads(r.value) for r in records if r.key in wanted]
    finally:
        await stop_consumer(consumer)
    return found
