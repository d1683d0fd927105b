"""A stage stopped (SIGTERM, as `make down` and Kubernetes stop it) while a message is in flight: the message
finishes or is redelivered after the restart, never dead-lettered, and its effect happens once.

graph-ingest is stopped while the scripted model holds its extraction call for the answer. The order inside
the shutdown (the subscribers stop before the hooks close the stores; the other order dead-lettered an in-flight
message with 'DriverError: Driver closed') is pinned by tests/broker/moe_core/runtime/test_service_shutdown.py:
here the whole stop and restart is checked end to end."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest

from moe_core.contracts import Topics
from tests.chaos.ingest import EXTRACTION, answered_and_extracted, ingested, nonzero, until
from tests.conftest import Scripted
from tests.lineage.conftest import LineageFleet
from tests.support.chaos import ask, wait_until
from tests.support.chaos_bus import records_of
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.record_check import assert_complete

pytestmark = pytest.mark.chaos
HELD_MS = 4_000  # the extraction call in flight while the stage is told to stop


async def test_a_stage_stopped_mid_message_finishes_it_once_without_dead_letter(
        chaos_fleet: Fleet, chaos_url: str, chaos_key: str, private_infra: PrivateInfra,
        scripted: Scripted, chaos_record: LineageFleet) -> None:
    m = f"G{uuid.uuid4().hex[:8]}"
    reply = f"Stopped politely ({m})."
    scripted.script(answered_and_extracted(m, reply, "Stop", held_ms=HELD_MS))  # then one after a redelivery
    stage = chaos_fleet["graph-ingest"]
    topics = Topics.for_namespace(chaos_fleet["gateway"].env["MOE_TOPIC_NAMESPACE"])
    bootstrap = private_infra.endpoints()["kafka"]
    outcome = await asyncio.to_thread(ask, chaos_url, chaos_key, f"Tell me gently {m}")
    assert outcome.status == 200 and outcome.content == reply, (outcome.status, outcome.body)
    rid = str(outcome.body["id"]).removeprefix("chatcmpl-")

    def extracting() -> bool:
        return any(m in json.dumps(c["messages"]) and EXTRACTION in json.dumps(c["messages"])
                   for c in scripted.calls())

    await asyncio.to_thread(wait_until, extracting, "graph-ingest's extraction call to be held")
    assert await ingested(private_infra, rid) == (0, 0)  # still in flight
    await asyncio.to_thread(stage.stop)  # SIGTERM; SIGKILL only after 20 s
    assert stage.proc is not None and stage.proc.returncode == -signal.SIGTERM, stage.tail()  # not killed
    assert "graph-ingest stopped" in stage.tail(5), stage.tail()  # its shutdown ran to the end
    stage.start()
    await asyncio.to_thread(stage.wait_ready)
    counted = await until(lambda: nonzero(ingested(private_infra, rid)), "the answer to be ingested")
    assert counted == (1, 1), counted  # one relation, asserted once: finished or redelivered, not both
    dead = [value for _, _, value, _ in await records_of(bootstrap, [topics.deadletter], rid)]
    assert dead == [], dead
    # graph-ingest's stop touches no answer: the request and its answer recorded once
    await asyncio.to_thread(assert_complete, chaos_record, [rid])
