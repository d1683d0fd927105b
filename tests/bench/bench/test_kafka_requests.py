"""The broker's own account (bench.kafka_requests) on a broker of the test's own (bench.kafka_broker: fleetlib's broker
in a throwaway folder on free ports): records produced between two snapshots are counted as Produce requests, their
fetches as FetchConsumer requests, and the broker's CPU and its threads' are read. No timing is asserted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kafka_requests import PROBE, BrokerProbe, usage
from moe_core.runtime.bus import ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs
from tests.support.ports import free_port

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]
RECORDS = 5


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The broker's address and pid; this process's Kafka clients its admin (the local fleet's admin password)."""
    folder, port = tmp_path_factory.mktemp("kafka"), free_port()
    started = subprocess.run([sys.executable, "-m", "bench.kafka_broker", "start", str(folder), "--port", str(port),
                              "--controller-port", str(free_port()), "--tls-port", str(free_port())],
                             cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"127.0.0.1:{port}", int(json.loads(started.stdout.splitlines()[-1])["MOE_BENCH_KAFKA_PID"])
    finally:
        subprocess.run([sys.executable, "-m", "bench.kafka_broker", "stop", str(folder)], cwd=REPO, check=False)


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
