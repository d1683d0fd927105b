"""The control plane's CPU and Postgres's per usage charge (issue 29: the control plane's only per-request work):

  python -m bench.usage_write_costs [N] [RATE] [ROUNDS] [--env NAME=VALUE ...]

Part 1, the statement alone, in this process on the local Postgres (started if it is not running): N charges
written through UsageStore.record one after another, then `SELECT 1` N times (asyncpg's and Postgres's floor
per round trip); CPU of this process and of Postgres (every process of its tree: the backends) per call.

Part 2, the service: a control plane alone as a real process (its own topic namespace, as
tests/infra/gateway/test_usage_topic.py runs it; `--env` adds settings to it) consumes RATE UsageCharged a second,
published by this process on its `usage` topic, ROUNDS rounds of N (each a fresh key, so every charge is new),
each round followed by as long an idle spell. Printed per round: the control plane's and Postgres's CPU per
charge, gross and net of their idle use (the CPU of the idle spell after it, per second, times the round's
seconds), and the idle use itself. RATE 0: all N published at once (a burst, as at high concurrency).

For a before/after, run it with an older tree first on PYTHONPATH (the subprocess inherits it):
`git archive <rev> libs services/control-plane | tar -x -C /tmp/before` and
`PYTHONPATH=/tmp/before/services/control-plane:.:/tmp/before/libs python -m bench.usage_write_costs`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from bench.infra import connect, pid_path
from bench.procs import cpu_seconds, tree
from moe_core.access.usage_store import UsageStore
from moe_core.contracts import UsageCharged, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from tests.support.fleet import ServiceProcess, free_port, running


def postgres_cpu_s() -> float:
    """Every Postgres process's CPU, the exited ones' too (the postmaster's reaped children: cutime, cstime)."""
    postmaster = int(pid_path("postgres").read_text().strip())
    fields = open(f"/proc/{postmaster}/stat").read().rsplit(")", 1)[1].split()
    return cpu_seconds(tree(postmaster)) + (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


async def per_call(label: str, n: int, call: Callable[[int], Awaitable[object]]) -> None:
    for i in range(min(n, 100)):  # warm: the statement prepared, the pool's connection open
        await call(-1 - i)
    cpu, pg = time.process_time(), postgres_cpu_s()
    for i in range(n):
        await call(i)
    print(f"  {label:38s} this process {(time.process_time() - cpu) / n * 1000:5.3f} ms CPU, "
          f"Postgres {(postgres_cpu_s() - pg) / n * 1000:5.3f} ms CPU per call")


async def statement(dsn: str, n: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    store = UsageStore(pool)
    key = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        print(f"the statement alone, {n} calls:")
        for _ in range(2):
            await per_call("UsageStore.record", n, lambda i: store.record(
                tenant_id="bench", key_id=key, mode="moe-orchestrator", model="moe-orchestrator", requests=1,
                prompt_tokens=12, completion_tokens=3, cost_micros=40, response_id=f"{key}-{uuid.uuid4().hex}"))
            await per_call("SELECT 1", n, lambda i: pool.fetchval("SELECT 1"))
    finally:
        await pool.execute("DELETE FROM usage_requests WHERE key_id = $1", key)
        await pool.execute("DELETE FROM usage_daily WHERE key_id = $1", key)
        await pool.close()


def charge(key: str) -> UsageCharged:
    return UsageCharged(response_id=f"{key}-{uuid.uuid4().hex}", tenant_id="bench", deadline_at=deadline_in(60),
                        key_id=key, mode="moe-orchestrator", model="moe-orchestrator", prompt_tokens=12,
                        completion_tokens=3, cost_micros=40, outcome="answered", settled_by="owner")


async def written(pool: asyncpg.Pool, key: str, n: int, timeout_s: float = 120) -> None:
    end = time.monotonic() + timeout_s
    while await pool.fetchval("SELECT count(*) FROM usage_requests WHERE key_id = $1", key) < n:
        if time.monotonic() > end:
            raise TimeoutError(f"{key}: not all {n} charges written")
        await asyncio.sleep(0.25)


async def service(eps: dict[str, str], n: int, rate: float, rounds: int, extra: dict[str, str]) -> None:
    namespace = f"usagebench{uuid.uuid4().hex[:6]}"
    settings = FleetSettings(topic_namespace=namespace, kafka_bootstrap=eps["kafka"], service_name="bench")
    bus = Bus(settings)
    await bus.ensure_topics()
    await bus.broker.start()
    pool = await asyncpg.create_pool(eps["postgres"], min_size=1, max_size=1)
    port = free_port()
    env = {**os.environ, "MOE_TOPIC_NAMESPACE": namespace, "MOE_KAFKA_BOOTSTRAP": eps["kafka"],
           "MOE_REDIS_URL": eps["redis"], "MOE_POSTGRES_DSN": eps.get("postgres-control-plane", eps["postgres"]),
           "MOE_HTTP_PORT": str(port), **extra}
    keys: list[str] = []
    try:
        with running(ServiceProcess("control-plane", port, env)) as cp:
            assert cp.proc is not None
            pid = cp.proc.pid

            async def one_round(count: int) -> tuple[float, float, float]:
                key = f"bench-{uuid.uuid4().hex[:8]}"
                keys.append(key)
                charges = [charge(key) for _ in range(count)]
                cp_cpu, pg_cpu, began = cpu_seconds(tree(pid)), postgres_cpu_s(), time.perf_counter()
                if rate > 0:
                    for i, c in enumerate(charges):
                        await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
                        await bus.publish(c, bus.topics.usage)
                else:
                    await asyncio.gather(*(bus.publish(c, bus.topics.usage) for c in charges))
                await written(pool, key, count)
                return cpu_seconds(tree(pid)) - cp_cpu, postgres_cpu_s() - pg_cpu, time.perf_counter() - began

            async def idle(seconds: float) -> tuple[float, float]:
                cp_cpu, pg_cpu = cpu_seconds(tree(pid)), postgres_cpu_s()
                await asyncio.sleep(seconds)
                return (cpu_seconds(tree(pid)) - cp_cpu) / seconds, (postgres_cpu_s() - pg_cpu) / seconds

            await one_round(min(n, 200))  # warm: the consumer's assignment, the pool, the statement prepared
            await asyncio.sleep(3)
            print(f"the control plane consuming {n} charges {'at once' if rate <= 0 else f'at {rate:g}/s'}"
                  f"{' with ' + ' '.join(f'{k}={v}' for k, v in extra.items()) if extra else ''}:")
            for r in range(rounds):
                cp_used, pg_used, seconds = await one_round(n)
                cp_idle, pg_idle = await idle(max(seconds, 5.0))
                cp_net, pg_net = cp_used - cp_idle * seconds, pg_used - pg_idle * seconds
                print(f"  round {r + 1}: {seconds:5.1f} s; per charge: control plane {cp_used / n * 1000:5.3f} ms "
                      f"(net {cp_net / n * 1000:5.3f}), Postgres {pg_used / n * 1000:5.3f} ms (net "
                      f"{pg_net / n * 1000:5.3f}), sum net {(cp_net + pg_net) / n * 1000:5.3f} ms; idle: "
                      f"control plane {cp_idle * 1000:4.1f} ms/s, Postgres {pg_idle * 1000:4.1f} ms/s")
    finally:
        for key in keys:
            await pool.execute("DELETE FROM usage_requests WHERE key_id = $1", key)
            await pool.execute("DELETE FROM usage_daily WHERE key_id = $1", key)
        await pool.close()
        await bus.close()


async def main(argv: list[str]) -> None:
    extra = dict(a.split("=", 1) for a in argv[argv.index("--env") + 1:]) if "--env" in argv else {}
    args = argv[:argv.index("--env")] if "--env" in argv else argv
    n = int(args[0]) if args else 1000
    rate = float(args[1]) if len(args) > 1 else 50.0
    rounds = int(args[2]) if len(args) > 2 else 3
    eps = connect(["kafka", "redis", "postgres"])
    await statement(eps["postgres"], n)
    await service(eps, n, rate, rounds, extra)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
