"""A stage stopped (SIGTERM, as `make down` and Kubernetes stop it) while a message is in flight: the message
finishes or is redelivered after the restart, never dead-lettered, and its effect happens once.

graph-ingest is stopped while the scripted model holds its extraction call for the answer. The order inside
the shutdown (the subscribers stop before the hooks close the stores; the other order dead-lettered an in-flight
message with 'DriverError: Driver closed'; no consumer leaves the group while a message is in flight) is pinned by
tests/broker/moe_core/runtime/test_service_shutdown.py: here the whole stop and restart is checked end to end.

Whether the message finishes within MOE_SHUTDOWN_GRACE_S depends on the host: after the held call the handler
still resolves, plans and writes in Neo4j, seconds on two loaded cores (measured: 1.5 to 4 s). Either outcome must
be whole: finished, then committed by the stop (not handled again); cancelled, or failed for a passing reason and
left for redelivery, then not committed (handled after the restart)."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from moe_core.contracts import Topics
from moe_core.runtime.kafka_clients import client_kwargs
from tests.chaos.ingest import EXTRACTION, answered_and_extracted, ingested, nonzero, until
from tests.conftest import Scripted
from tests.lineage.conftest import LineageFleet
from tests.support.chaos import ask, wait_until
from tests.support.chaos_bus import partitions, records_of
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.record_check import assert_complete
from tests.support.topic_reader import stop_consumer

pytestmark = pytest.mark.chaos
HELD_MS = 4_000  # the extraction call in flight while the stage is told to stop


async def test_a_stage_stopped_mid_message_finishes_it_once_without_dead_letter(
        chaos_fleet: Fleet, chaos_url: str, chaos_key: str, private_infra: PrivateInfra,
        scripted: Scripted, chaos_record: LineageFleet) -> None:
    m = f"G{uuid.uuid4().hex[:8]}"
    reply = f"Stopped politely ({m})."
    scripted.script(answered_and_extracted(m, reply, "Stop", held_ms=HELD_MS))  # then one after a redelivery
    stage = chaos_fleet["graph-ingest"]
    namespace = chaos_fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    topics = Topics.for_namespace(namespace)
    bootstrap = private_infra.endpoints()["kafka"]
    outcome = await asyncio.to_thread(ask, chaos_url, chaos_key, f"Tell me gently {m}")
    assert outcome.status == 200 and outcome.content == reply, (outcome.status, outcome.body)
    rid = str(outcome.body["id"]).removeprefix("chatcmpl-")

    def extracting() -> bool:
        return any(m in json.dumps(c["messages"]) and EXTRACTION in json.dumps(c["messages"])
                   for c in scripted.calls())

    await asyncio.to_thread(wait_until, extracting, "graph-ingest's extraction call to be held")
    assert await ingested(private_infra, rid) == (0, 0)  # still in flight
    logged = stage.log.stat().st_size
    await asyncio.to_thread(stage.stop)  # SIGTERM; SIGKILL only after 20 s
    assert stage.proc is not None and stage.proc.returncode == -signal.SIGTERM, stage.tail()  # not killed
    assert "graph-ingest stopped" in stage.tail(5), stage.tail()  # its shutdown ran to the end
    stop = stage.log.read_bytes()[logged:].decode(errors="replace")
    cancelled = "still being handled after the shutdown grace were cancelled" in stop
    # or it failed for a passing reason (Neo4j or OPA slow under load) and, after its backoff, was left for
    # redelivery: the stop takes no record again, so it is not committed either way and is handled after the restart
    redelivered = "transient failure (attempt" in stop
    group = f"graph-ingest.{namespace}"  # the service name, namespaced (FleetSettings.group_id)
    assert await committed_past(bootstrap, topics.ingest, group, rid) is not (cancelled or redelivered), stop
    stage.start()
    await asyncio.to_thread(stage.wait_ready)
    counted = await until(lambda: nonzero(ingested(private_infra, rid)), "the answer to be ingested")
    assert counted == (1, 1), counted  # one relation, asserted once: finished or redelivered, not both
    dead = [value for _, _, value, _ in await records_of(bootstrap, [topics.deadletter], rid)]
    assert dead == [], dead
    # graph-ingest's stop touches no answer: the request and its answer recorded once
    await asyncio.to_thread(assert_complete, chaos_record, [rid])


async def committed_past(bootstrap: str, topic: str, group: str, key: str) -> bool:
    """Whether `group` has committed its offset past the record keyed `key` on `topic`."""
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await admin.start()
    await consumer.start()
    try:
        parts = await partitions(admin, [topic])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: TopicPartition | None = None
        offset = -1
        while found is None and [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                mine = [r.offset for r in records if r.key is not None and r.key.decode(errors="replace") == key]
                if mine:
                    found, offset = tp, mine[0]
        assert found is not None, f"no record keyed {key} on {topic}"
        committed = await admin.list_consumer_group_offsets(group, partitions=[found])
        meta = committed.get(found)
        return meta is not None and meta.offset > offset
    finally:
        await stop_consumer(consumer)
        await admin.close()
