"""The gateway's whole process per exact repeat, measured from outside it (issue 52: a cache hit's 7.7 ms of gateway
CPU in `make bench`): a lone gateway (tests.support.lone_service: the real Kafka, Redis and Postgres, its own topic
namespace, one worker) with an API key, an exact-cache entry seeded in Redis as the planner writes it, and this
process asking the cached question again and again over HTTP. Nothing behind the gateway runs: an exact repeat is
answered at the edge (its Answer and egress record published, its usage settled after the reply). Reports the
gateway's CPU per request from /proc (gross, and net of its idle rate measured just before), what its /metrics
counted per request (exact-cache hits, messages it handled and published, Redis round trips in all and by
operation), the client's wait (p50, p90: a report, not a check), and with --profile FILE its
cProfile (CPU clock) of the measured requests (a coroutine's calls count each resumption), or with --callgrind FILE
the instructions it executed per request under valgrind's callgrind (net of an idle window of the same length as
--idle; a count, steady on a loaded host where CPU time is not). Not a test:
`.venv/bin/python -m tests.infra.gateway.gateway_load 300 [--profile FILE | --callgrind FILE]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "deploy" / "local"))

import fleetctl
from fleetlib import config as fleet_config

from moe_core.contracts import ChatMessage, ChatRequest, ModelUse, deadline_in
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, cache_scope
from moe_core.runtime.stores import redis_client
from tests.support import fleet
from tests.support.keys import create_key
from tests.support.lone_service import lone_gateway

TENANT = "t-gateway-load"
QUESTION = "Who painted the Mona Lisa?"
ANSWER = "Leonardo da Vinci painted the Mona Lisa between about 1503 and 1519."
# the gateway's module run with a CPU-clock profiler that this process switches on (SIGUSR1) and off, written to
# its file (SIGUSR2), around the measured requests only
PROFILED = ("import cProfile, os, runpy, signal, time\n"
            "p = cProfile.Profile(time.process_time)\n"
            "def dump(*_):\n    p.disable(); p.dump_stats(os.environ['GATEWAY_LOAD_PROFILE'])\n"
            "signal.signal(signal.SIGUSR1, lambda *_: p.enable())\n"
            "signal.signal(signal.SIGUSR2, dump)\n"
            "runpy.run_module('gateway', run_name='__main__', alter_sys=True)\n")


def _cpu_s(pid: int) -> float:
    """utime + stime of the process and its waited-for children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def _seed(redis_url: str, namespace: str) -> None:
    request = ChatRequest(response_id="seed", tenant_id=TENANT, deadline_at=deadline_in(30), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=QUESTION)])
    scope = cache_scope(request)
    assert scope is not None
    redis = redis_client(redis_url)
    try:
        await ExactAnswers(redis, namespace, 3600).put(scope, ExactEntry(
            cache_key=f"entry-{uuid.uuid4().hex[:8]}", question=QUESTION, answer=ANSWER, experts_used=["general"],
            models_used=[ModelUse(model="m", category="general")], completion_tokens=18))
    finally:
        await redis.aclose()


def _counts(client: httpx.Client, url: str) -> dict[str, float]:
    """From the gateway's /metrics: exact-cache hits, messages it handled (any topic) and published (acknowledged),
    its Redis round trips, in all and by operation (`redis <op>`: a script call is `evalsha`)."""
    found = {"hits": 0.0, "messages handled": 0.0, "messages published": 0.0, "redis round trips": 0.0}
    for line in client.get(f"{url}/metrics").text.splitlines():
        name = ("hits" if line.startswith("moe_gateway_exact_cache_total") and 'outcome="hit"' in line else
                "messages handled" if line.startswith("moe_stage_seconds_count") else
                "messages published" if line.startswith("moe_messages_published_total") else
                "redis round trips" if line.startswith("moe_store_seconds_count") and 'store="redis"' in line else
                None)
        if name is not None:
            found[name] += float(line.rsplit(" ", 1)[1])
        if name == "redis round trips" and (op := re.search(r'op="([^"]*)"', line)) is not None:
            found[f"redis {op.group(1)}"] = found.get(f"redis {op.group(1)}", 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def main(n: int, profile: str, idle_s: float, callgrind: str = "") -> None:
    fleetctl.ensure_up(["kafka", "redis", "postgres"])
    os.environ.update(fleet_config.kafka_admin_env())  # as tests/infra/conftest.py: the broker's admin
    infra = fleetctl.endpoints()
    if profile:  # the gateway's module run under a CPU-clock profiler (PROFILED)
        fleet.ServiceProcess.start = _start_profiled  # type: ignore[method-assign,assignment]
    if callgrind:  # under callgrind, instrumented only while counting (_instructions); it starts slowly
        fleet.ServiceProcess.start = _start_callgrind  # type: ignore[method-assign,assignment]
        ready = fleet.ServiceProcess.wait_ready
        fleet.ServiceProcess.wait_ready = lambda self, timeout_s=0: ready(self, 900)  # type: ignore[method-assign]
    out = str(Path(profile or callgrind or "unused").resolve())
    with lone_gateway(infra, "gwload", GATEWAY_LOAD_PROFILE=out) as gateway:
        assert gateway.proc is not None
        namespace = gateway.env["MOE_TOPIC_NAMESPACE"]
        key = asyncio.run(create_key(infra["postgres"], "gateway-load", "user", [TENANT]))
        asyncio.run(_seed(infra["redis"], namespace))
        body = {"model": "moe-orchestrator", "messages": [{"role": "user", "content": QUESTION}]}
        walls: list[float] = []
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
            def ask() -> None:
                started = time.perf_counter()
                response = client.post(f"{gateway.url}/v1/chat/completions", json=body)
                walls.append(time.perf_counter() - started)  # the client's wait: the reply, not what follows it
                response.raise_for_status()
                assert response.json()["choices"][0]["message"]["content"] == ANSWER, response.text

            for _ in range(20):  # warm-up
                ask()
            pid = gateway.proc.pid
            if callgrind:
                idle_ir, used_ir, took = _instructions(pid, Path(callgrind).resolve(), idle_s, n, ask)
                net = used_ir - idle_ir / idle_s * took
                print(f"{n} exact repeats under callgrind: {net / n:,.0f} instructions per request net of idle "
                      f"({used_ir / n:,.0f} gross; idle {idle_ir / idle_s:,.0f} a second, {took:.0f} s counted)")
                return
            cpu, wall = _cpu_s(pid), time.perf_counter()
            time.sleep(idle_s)
            idle = (_cpu_s(pid) - cpu) / (time.perf_counter() - wall)
            counts = _counts(client, gateway.url)
            walls.clear()
            if profile:
                os.kill(pid, signal.SIGUSR1)
            cpu, wall = _cpu_s(pid), time.perf_counter()
            for _ in range(n):
                ask()
            time.sleep(1.0)  # the last replies' settlements (after the reply)
            used, took = _cpu_s(pid) - cpu, time.perf_counter() - wall
            if profile:
                os.kill(pid, signal.SIGUSR2)
                time.sleep(1.0)
            after = _counts(client, gateway.url)
            per = {k: round((v - counts.get(k, 0.0)) / n, 2) for k, v in after.items()}
    waits = sorted(walls)
    print(f"{n} exact repeats, the client's wait p50 {waits[len(waits) // 2] * 1000:.2f} ms, p90 "
          f"{waits[len(waits) * 9 // 10] * 1000:.2f} ms")
    print(f"{n} exact repeats, per request: {per}; gateway process alone: "
          f"{used * 1000 / n:.2f} ms CPU per request gross, {(used - idle * took) * 1000 / n:.2f} net of idle "
          f"({idle * 1000:.1f} ms CPU/s idle), {(took - 1.0) * 1000 / n:.1f} ms wall per request")


def _instructions(pid: int, out: Path, idle_s: float, n: int, ask: Callable[[], None]) -> tuple[int, int, float]:
    """Instructions the gateway executed idle for `idle_s` seconds, then in `n` requests and `idle_s` seconds after
    them (the settlements after the last replies), and how long the second count ran."""
    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)

    control("-i", "on")
    time.sleep(idle_s)
    control("-d", "idle")
    started = time.perf_counter()
    for _ in range(n):
        ask()
    time.sleep(idle_s)
    control("-d", "requests")
    took = time.perf_counter() - started
    control("-i", "off")
    idle, used = sorted(_dumps(out), key=lambda p: p.stat().st_mtime)[-2:]
    return _total(idle), _total(used), took


def _dumps(out: Path) -> list[Path]:
    """callgrind's dumps for `out`: out.1, out.2, ... (out itself is its last, written at the exit)."""
    return [p for p in out.parent.glob(f"{out.name}.*") if p.suffix[1:].isdigit()]


def _total(dump: Path) -> int:
    found = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    assert found is not None, dump
    return int(found.group(1))


def _start_callgrind(service: fleet.ServiceProcess) -> None:
    service.log.parent.mkdir(parents=True, exist_ok=True)
    out = service.env["GATEWAY_LOAD_PROFILE"]
    for old in _dumps(Path(out)):
        old.unlink()
    with open(service.log, "ab") as log:
        service.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, "-m", "gateway"], env={**service.env, "MOE_EXIT_WITH_PID": str(os.getpid())},
            stdout=log, stderr=subprocess.STDOUT, cwd=fleet.REPO, start_new_session=True)


def _start_profiled(service: fleet.ServiceProcess) -> None:
    service.log.parent.mkdir(parents=True, exist_ok=True)
    with open(service.log, "ab") as out:
        service.proc = subprocess.Popen(
            [sys.executable, "-c", PROFILED], env={**service.env, "MOE_EXIT_WITH_PID": str(os.getpid())},
            stdout=out, stderr=subprocess.STDOUT, cwd=fleet.REPO, start_new_session=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=300)
    parser.add_argument("--profile", default="", help="the gateway process's cProfile (CPU clock), here")
    parser.add_argument("--callgrind", default="", help="count the gateway's instructions (callgrind dumps here)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle rate's measurement")
    args = parser.parse_args()
    main(args.n, args.profile, args.idle, args.callgrind)
