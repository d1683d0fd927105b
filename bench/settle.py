"""When the work behind a cell's requests is done: every consumer no request waits for (a `linger=True`
subscription: codex-lineage's record of every topic, the control plane's usage, the planner's cache write-behind,
graph-ingest's and gap-healer's learning) has committed every message its topics hold.

Those consumers fetch several messages at a time (MOE_KAFKA_LINGER_MS, 500 ms by default): a cell of a few
requests can end before the record has even fetched them, and their CPU would fall outside the cell's window (or,
at the next cell's start, inside the wrong one). A cell's CPU window therefore opens and closes here, on the
broker's own account of the consumers' progress (their committed offsets against the topics' end offsets), not
after a sleep. Offsets are committed only after a handler returned (moe_core.runtime.bus; codex-lineage commits a batch
after its transaction), so a zero lag means the work was done, not just fetched.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Topics
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.stage.spec import EVERY_TOPIC

# each poll is a FindCoordinator and an OffsetFetch per group and a ListOffsets, inside the cell's window and so
# counted as Kafka's CPU (bench.kafka_costs_log: 2-27 requests per full request at 50 ms); a poll's lateness
# only lengthens the window by idle time, which is subtracted
POLL_S = 0.25
TIMEOUT_S = 60.0


class NotSettled(RuntimeError):
    """A consumer behind the request path did not catch up in time: the bench stops rather than measure a cell
    whose work is partly outside its window."""


@dataclass(frozen=True)
class Behind:
    """One consumer group behind the request path and the topics it reads."""

    service: str
    group: str
    topics: tuple[str, ...]
    strict: bool  # every partition with messages must have a commit (the subscription surely exists)


def behind_the_path(services: list[str], namespace: str) -> list[Behind]:
    """The lingering subscriptions of the services that run (their declarations, moe_core.stage.registry)."""
    topics = Topics.for_namespace(namespace)
    out = []
    for name in services:
        declaration = stage_registry.service(name).declaration()
        for consumes in getattr(declaration, "consumes", ()) if declaration else ():
            if not (consumes.linger and consumes.group):
                continue
            names = topics.recorded() if consumes.topic == EVERY_TOPIC else [getattr(topics, consumes.topic)]
            # a `when` subscription may not be made at all (e.g. the planner's cache off): a partition without
            # a commit is then not counted as lag
            out.append(Behind(name, f"{name}.{namespace}", tuple(names), consumes.when is None))
    return out


class Settler:
    """Waits until every group of `groups` has committed its topics' end offsets (open it once per run)."""

    def __init__(self, bootstrap: str, groups: list[Behind]) -> None:
        self.bootstrap, self.groups = bootstrap, groups
        self.admin: AIOKafkaAdminClient | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.parts: dict[str, list[TopicPartition]] | None = None

    async def __aenter__(self) -> Settler:
        kwargs = client_kwargs(bootstrap=self.bootstrap)
        self.admin = AIOKafkaAdminClient(**kwargs, client_id="bench-settle")
        self.consumer = AIOKafkaConsumer(**kwargs, group_id=None, enable_auto_commit=False, client_id="bench-settle")
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.admin is not None:
            await self.admin.close()

    async def lag(self) -> dict[str, int]:
        """Per group, the messages its topics hold that it has not committed (committed read before the ends)."""
        assert self.admin is not None and self.consumer is not None
        parts = await self._partitions()
        committed = {g.group: await self.admin.list_consumer_group_offsets(g.group, partitions=parts[g.group])
                     for g in self.groups}
        every = sorted({tp for tps in parts.values() for tp in tps})
        ends = await self.consumer.end_offsets(every) if every else {}
        out: dict[str, int] = {}
        for g in self.groups:
            behind = 0
            for tp in parts[g.group]:
                done = committed[g.group].get(tp)
                offset = done.offset if done is not None else -1
                if offset < 0 and not g.strict:
                    continue
                behind += max(ends.get(tp, 0) - max(offset, 0), 0)
            out[g.group] = behind
        return out

    async def wait(self, timeout_s: float = TIMEOUT_S) -> float:
        """Seconds until nothing is behind; NotSettled (with the lag per group) after `timeout_s`."""
        started = time.monotonic()
        while True:
            lag = await self.lag()
            if not any(lag.values()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise NotSettled(f"not caught up after {timeout_s:.0f} s (messages behind per group): {lag}")
            await asyncio.sleep(POLL_S)

    async def _partitions(self) -> dict[str, list[TopicPartition]]:
        """Each group's partitions, once (the fleet made its topics before it was ready)."""
        assert self.admin is not None
        if self.parts is None:
            wanted = sorted({t for g in self.groups for t in g.topics})
            existing = set(await self.admin.list_topics())
            described = await self.admin.describe_topics([t for t in wanted if t in existing])
            found = {d["topic"]: [TopicPartition(d["topic"], p["partition"]) for p in d.get("partitions", [])]
                     for d in described if not d.get("error_code")}
            self.parts = {g.group: [tp for t in g.topics for tp in found.get(t, [])] for g in self.groups}
        return self.parts


def settler(bootstrap: str, services: list[str], namespace: str) -> Settler | None:
    groups = behind_the_path(services, namespace)
    return Settler(bootstrap, groups) if groups else None

