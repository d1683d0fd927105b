"""The broker's own account (bench.kafka_requests) on a broker of the bench tests' own (bench.kafka_broker: fleetlib's
broker in a throwaway folder on free ports; its request log is test_kafka_costs_log's): records produced between two
snapshots are counted as Produce requests, their fetches as FetchConsumer requests, and the broker's CPU and its
threads' are read. No timing is asserted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kafka_requests import PROBE, BrokerProbe, usage
from moe_core.runtime.bus import ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs
from tests.bench.bench.conftest import OwnBroker

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]
RECORDS = 5


@pytest.fixture(scope="module")
def broker(own_broker: OwnBroker) -> tuple[str, int]:
    """The broker's address and pid (the package's own broker: tests/bench/bench/conftest.py)."""
    return own_broker.bootstrap, own_broker.pid


async def _produce_and_fetch(bootstrap: str) -> None:
    await ensure_topics(bootstrap, ["probe.v1"], 1)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap), acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer("probe.v1", **client_kwargs(bootstrap=bootstrap), group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await producer.start()
    await consumer.start()
    try:
        for i in range(RECORDS):
            await producer.send_and_wait("probe.v1", b"x", key=str(i).encode())
        got = 0
        while got < RECORDS:
            got += sum(len(batch) for batch in (await consumer.getmany(timeout_ms=5000)).values())
    finally:
        await producer.stop()
        await consumer.stop()


def test_requests_by_type_and_threads(broker: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap, pid = broker
    from fleetlib import config as fleet_config  # deploy/local (tests/conftest puts it on the path)

    for key, value in fleet_config.kafka_admin_env().items():
        monkeypatch.setenv(key, value)
    with BrokerProbe(pid) as probe:
        probe.snapshot()  # starts the broker's management agent
        before = probe.snapshot()
        asyncio.run(_produce_and_fetch(bootstrap))
        after = probe.snapshot()
    used = usage(after, before)
    assert used["requests"].get("Produce", 0) >= RECORDS
    assert used["requests"].get("FetchConsumer", 0) >= 1
    assert "Fetch" not in used["requests"]  # FetchConsumer + FetchFollower: not counted twice
    assert used["cpu_ms"] > 0 and used["threads_cpu_ms"].get("request handlers", 0) > 0
    assert used["threads_cpu_ms"].get(PROBE, 0) >= 0  # the probe's own reads are shown apart, not in cpu_ms
    assert any(key.startswith("Produce ") for key in used["times_ms"])
