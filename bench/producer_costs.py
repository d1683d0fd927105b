"""The Bus's producer, aiokafka against librdkafka (issue 52): CPU per published record on the real broker.

  python -m bench.producer_costs [N] [--rounds R] [--tls] [--callgrind]

Each variant runs in a fresh process of its own: a producer built as the fleet builds it (aiokafka: make_broker's
arguments with kafka_clients.client_kwargs; librdkafka: moe_core.runtime.rdkafka_producer), as the bench's admin
principal (SASL/SCRAM; --tls: the TLS listener with the local CA), sends a ~2 KB JSON value with 6 headers to a
fresh topic, acks=all and idempotent, N times awaited one at a time (`serial`) and N times in gathers of 3
(`gather3`), after WARMUP unmeasured. Counted: the process's CPU (time.process_time: every thread, librdkafka's
own included) per record. --callgrind: the instructions per record instead (valgrind, every thread), as the
difference of a run of N and one of 2N records, so start-up and imports cancel out.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

VARIANTS = ("aiokafka", "librdkafka")
MODES = ("serial", "gather3")
WARMUP = 200
VALUE = json.dumps({"response_id": "r" * 32, "tenant_id": "bench", "schema_version": 1,
                    "content": "x" * 1800, "task_id": "t-1"}).encode()
HEADERS = [(name, f"{name}-value".encode()) for name in
           ("x-response-id", "x-message-type", "x-schema-version", "x-producer", "x-task-id", "traceparent")]


def _settings(tls: bool) -> Any:
    from bench import infra
    from moe_core.runtime.settings import FleetSettings

    env = infra.kafka_admin_env()
    ends = infra.endpoints()
    update: dict[str, Any] = {"service_name": "producer-bench"}
    if tls:
        update |= {"kafka_bootstrap": ends["kafka-tls"], "kafka_security_protocol": "SASL_SSL",
                   "kafka_ca_file": ends["kafka-ca-file"]}
    os.environ.update(env)
    return FleetSettings().model_copy(update=update)


async def _producer(variant: str, settings: Any) -> tuple[Any, Any]:
    """(send(topic, value, key, headers) awaited until acknowledged, stop())."""
    if variant == "aiokafka":
        from aiokafka import AIOKafkaProducer

        from moe_core.runtime.kafka_clients import client_kwargs

        producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True, linger_ms=0,
                                    request_timeout_ms=30_000, client_id=settings.service_name)
        await producer.start()

        async def send(topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
            await (await producer.send(topic, value=value, key=key, headers=headers))

        return send, producer.stop
    from moe_core.runtime.rdkafka_producer import RdKafkaProducer

    rd = RdKafkaProducer(settings)
    return rd.send, rd.close


async def _topic(tls: bool, remove: str | None = None) -> str:
    """A fresh topic every run of the bench uses (a new topic takes the loaded broker up to ~30 s to show in its
    metadata), or `remove`d again."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from moe_core.contracts import Topics
    from moe_core.runtime.bus import ensure_topics
    from moe_core.runtime.kafka_clients import client_kwargs

    settings = _settings(tls)
    if remove is None:
        topic = Topics.for_namespace("prodcost" + uuid.uuid4().hex[:8]).answers  # a name of the fleet's form
        await ensure_topics(settings.kafka_bootstrap, [topic], 1, settings=settings)
        consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None)
        await consumer.start()
        try:
            for _ in range(300):  # visible before the children start: their producers wait only 30 s
                if topic in await consumer.topics():
                    break
                await asyncio.sleep(1)
        finally:
            await consumer.stop()
        return topic
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    await admin.delete_topics([remove])
    await admin.close()
    return remove


async def _child(variant: str, n: int, tls: bool, topic: str) -> dict[str, Any]:
    settings = _settings(tls)
    send, stop = await _producer(variant, settings)
    key = b"k" * 32
    for _ in range(WARMUP):
        await send(topic, VALUE, key, HEADERS)
    result: dict[str, Any] = {"variant": variant, "n": n}
    for mode in MODES:
        started, wall = time.process_time(), time.perf_counter()
        if mode == "serial":
            for _ in range(n):
                await send(topic, VALUE, key, HEADERS)
        else:
            for _ in range(n // 3):
                await asyncio.gather(*(send(topic, VALUE, key, HEADERS) for _ in range(3)))
        result[mode] = round((time.process_time() - started) / n * 1e6, 1)
        result[mode + "_wall"] = round((time.perf_counter() - wall) / n * 1e6, 1)
    await stop()
    return result


def one(variant: str, n: int, tls: bool, topic: str, valgrind: list[str] | None = None) -> dict[str, Any]:
    args = [*(valgrind or []), sys.executable, "-m", "bench.producer_costs", "--child", variant, str(n), topic,
            *(["--tls"] * tls)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{variant}: exit {done.returncode}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def instructions(variant: str, n: int, tls: bool, topic: str) -> float:
    """Instructions per record (every thread of the process), from two callgrind runs of n and 2n records."""
    totals = []
    for count in (n, 2 * n):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            one(variant, count, tls, topic, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                      "--trace-children=no"])
            totals.append(sum(_events(path) for path in Path(tmp).glob("callgrind.out*")))
    return (totals[1] - totals[0]) / (2 * n)  # each run sends n per mode: 2n records more in the second


def _events(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"{path}: no totals")


def main(argv: list[str]) -> None:
    tls = "--tls" in argv
    if "--child" in argv:
        at = argv.index("--child")
        print(json.dumps(asyncio.run(_child(argv[at + 1], int(argv[at + 2]), tls, argv[at + 3]))))
        return
    topic = asyncio.run(_topic(tls))
    try:
        _measure(argv, tls, topic)
    finally:
        asyncio.run(_topic(tls, remove=topic))


def _measure(argv: list[str], tls: bool, topic: str) -> None:
    n = next((int(a) for a in argv if a.isdigit()), 3000)
    if "--callgrind" in argv:
        for variant in VARIANTS:
            print(f"{variant}: {instructions(variant, n, tls, topic):,.0f} instructions per record "
                  f"(serial and gather3 alike, {'TLS' if tls else 'SASL plaintext'})")
        return
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    runs: dict[str, dict[str, list[float]]] = {v: {m: [] for m in (*MODES, "serial_wall")} for v in VARIANTS}
    for r in range(rounds):  # alternated, so drifting load hits both alike
        for variant in VARIANTS:
            result = one(variant, n, tls, topic)
            for mode in runs[variant]:
                runs[variant][mode].append(result[mode])
            print(f"round {r + 1} {variant}: {result}", file=sys.stderr)
    print(f"{n} records per mode and run (after {WARMUP} unmeasured), {rounds} rounds, "
          f"{'TLS' if tls else 'SASL plaintext'}, load {os.getloadavg()[0]:.1f}; process CPU µs per record:")
    for variant, modes in runs.items():
        print(f"  {variant:10s} " + "  ".join(
            f"{mode} lowest {min(v):6.1f} median {statistics.median(v):6.1f}" for mode, v in modes.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
