"""The broker's request log (bench.kafka_costs_log) on a broker of the bench tests' own: a writer's records are
counted as its Produce requests, a reader's fetches under its client id and topic, the fetches answered without a
record as empty, and only the requests after a mark. Counts, no timings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.kafka_costs_log import count, lines
from moe_core.runtime.bus import ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs
from tests.bench.bench.conftest import OwnBroker

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]
RECORDS = 3


@pytest.fixture(scope="module")
def broker(own_broker: OwnBroker) -> tuple[str, Path]:
    """The broker's address and its request log (the package's own broker: tests/bench/bench/conftest.py)."""
    return own_broker.bootstrap, own_broker.log


async def _traffic(bootstrap: str, log: Path) -> dict[str, dict[str, int]]:
    topic = "logtest.probe.v1"
    await ensure_topics(bootstrap, [topic], 1)
    reader = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), client_id="reader", group_id=None,
                              enable_auto_commit=False, fetch_max_wait_ms=100)
    writer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap), client_id="writer", linger_ms=0)
    await reader.start()
    await writer.start()
    try:
        reader.assign([TopicPartition(topic, 0)])
        await reader.seek_to_end(TopicPartition(topic, 0))
        mark = lines(log)
        for i in range(RECORDS):
            await writer.send_and_wait(topic, f"record {i}".encode())  # one Produce request each
        got = 0
        while got < RECORDS:
            batch = await reader.getmany(timeout_ms=5_000)
            got += sum(len(records) for records in batch.values())
        await asyncio.sleep(0.5)  # the reader's next fetches find nothing: parked 100 ms each, answered empty
    finally:
        await writer.stop()
        await reader.stop()
    return {kind: dict(counter) for kind, counter in count(log, mark).items()}


def test_requests_are_counted_by_api_client_and_topic(broker: tuple[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap, log = broker
    from fleetlib import config as fleet_config  # deploy/local (tests/conftest puts it on the path)

    for key, value in fleet_config.kafka_admin_env().items():  # the broker's admin (SASL/SCRAM)
        monkeypatch.setenv(key, value)
    counted = asyncio.run(_traffic(bootstrap, log))
    assert counted["client"]["PRODUCE writer"] == RECORDS
    fetches = counted["client"]["FETCH reader [probe]"]
    empty = counted["empty"]["reader [probe]"]
    assert 0 < empty < fetches  # some fetches carried the records, the idle ones none
    assert counted["api"]["FETCH"] >= fetches
    assert not any(key.startswith("PRODUCE") and key != "PRODUCE writer" for key in counted["client"])
