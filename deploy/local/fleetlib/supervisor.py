"""up / down / status: start detached processes, wait for real readiness, stop only what we started."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from . import config, install, proc
from .component import Component

POLL = 0.5


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialise concurrent fleetctl runs (say a test session and a shell) on one machine."""
    config.RUN.mkdir(parents=True, exist_ok=True)
    with (config.RUN / "fleetctl.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((config.HOST, port)) == 0


def preload(comps: list[Component]) -> None:
    """Import the client libraries up front: a 1-3 s import inside a running probe stalls the others."""
    for module in sorted({m for c in comps for m in c.clients}):
        importlib.import_module(module)


async def _probe(comp: Component, limit: float = 10) -> str | None:
    """None when ready, else the reason."""
    try:
        if await asyncio.wait_for(comp.check(), limit) is False:
            return "check returned False"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


async def _wait_ready(comp: Component, announce: bool) -> str | None:
    t0 = time.monotonic()
    deadline = t0 + comp.deadline
    reason = "not checked"
    while True:
        if proc.alive(comp.name, comp.match()) is None:
            code = proc.exit_code(comp.name)
            return f"process exited (exit code {code})" if code is not None else "process is gone"
        reason = await _probe(comp) or ""
        if not reason:
            if announce:
                took = time.monotonic() - t0
                print(f"{comp.name}: ready on {config.HOST}:{comp.port} ({took:.1f}s)", flush=True)
            return None
        if time.monotonic() > deadline:
            return f"not ready after {comp.deadline:.0f}s: {reason}"
        await asyncio.sleep(POLL)


def _start(comp: Component) -> str | None:
    """Prepare and spawn; None on success, else the reason."""
    try:
        if comp.name in ("kafka", "neo4j"):
            install.ensure_jars(comp.name)
    except install.InstallError as exc:
        return str(exc)
    if _port_busy(comp.port):
        return f"port {config.HOST}:{comp.port} is already in use by a process fleetctl did not start"
    try:
        argv = comp.prepare()
    except Exception as exc:
        return f"preparing failed: {exc}"
    if not argv:
        return "preparing gave no command to start"
    env = comp.env() if comp.env else None
    pid = proc.spawn(comp.name, argv, env=env, user=comp.user)
    print(f"{comp.name}: started (pid {pid}), waiting up to {comp.deadline:.0f}s", flush=True)
    return None


def _report(comp: Component, reason: str) -> None:
    log = config.log_path(comp.name)
    print(f"\nFAILED {comp.name}: {reason}\nlog: {log} (last 20 lines)\n{proc.tail(log, 20)}\n", flush=True)


async def _bring_up(comp: Component, pool: ThreadPoolExecutor) -> tuple[bool, bool]:
    """Start `comp` unless it is running, then wait for it. Returns (started, ok)."""
    start = proc.alive(comp.name, comp.match()) is None
    if start:
        config.pid_path(comp.name).unlink(missing_ok=True)
        err = await asyncio.get_running_loop().run_in_executor(pool, _start, comp)
        if err:
            _report(comp, err)
            return start, False
    err = await _wait_ready(comp, announce=start)
    if err:
        pid = None if start else proc.alive(comp.name, comp.match())  # running before, still alive, never answered
        _report(comp, err if pid is None else f"{err}\n{already_running_hint(comp, pid)}")
        return start, False
    return start, True


def already_running_hint(comp: Component, pid: int) -> str:
    """Why a component this command did not start may never answer: it answers somewhere else."""
    return (f"{comp.name} was already running when this command began (pid {pid}, from its pid file) and does not "
            f"answer on {config.HOST}:{comp.port} here: if it was started in another network namespace or "
            "container, `make down` stops it and `make up` starts it again here")


async def _up_stage(comps: list[Component]) -> tuple[list[str], list[str]]:
    """Start what is not running and wait for all, in parallel. Returns (started, failed) names."""
    with ThreadPoolExecutor(max_workers=max(1, len(comps))) as pool:
        results = await asyncio.gather(*(_bring_up(c, pool) for c in comps))
    started = [c.name for c, (s, _) in zip(comps, results, strict=True) if s]
    failed = [c.name for c, (_, ok) in zip(comps, results, strict=True) if not ok]
    return started, failed


async def up_async(comps: list[Component], do_install: bool = True) -> int:
    preload(comps)
    infra = [c for c in comps if c.group == "infra"]
    if do_install and infra:
        await asyncio.to_thread(install.ensure_host, [c.name for c in infra])
    started: list[str] = []
    for group in ("infra", "services"):
        stage = [c for c in comps if c.group == group]
        if not stage:
            continue
        s, failed = await _up_stage(stage)
        started += s
        if failed:
            print(f"fleetctl up: failed: {', '.join(failed)}", flush=True)
            return 1
    if not started:
        print(f"up: already running and ready: {' '.join(c.name for c in comps)}", flush=True)
    return 0


def up(comps: list[Component]) -> int:
    with locked():
        try:
            return asyncio.run(up_async(comps))
        except install.InstallError as exc:
            print(f"fleetctl install failed: {exc}", flush=True)
            return 1


def down(comps: list[Component]) -> int:
    with locked():
        for group in ("services", "infra"):  # services first: they hold connections to the infra
            stage = [c for c in comps if c.group == group]
            with ThreadPoolExecutor(max_workers=max(1, len(stage))) as pool:
                results = list(pool.map(
                    lambda c: proc.stop(c.name, c.match(), c.stop_timeout, c.stop_signal), stage))
            for comp, result in zip(stage, results, strict=True):
                if result != "not running":
                    print(f"{comp.name}: {result}", flush=True)
    return 0


async def _status_row(comp: Component) -> str:
    pid = proc.alive(comp.name, comp.match())
    ready = "yes" if pid and await _probe(comp, limit=5) is None else "no"
    state = "running" if pid else "stopped"
    return f"{comp.name:<14} {state:<8} pid {pid or '-':<8} port {comp.port:<6} ready {ready}"


def status(comps: list[Component]) -> int:
    preload(comps)

    async def rows() -> list[str]:
        return await asyncio.gather(*(_status_row(c) for c in comps))

    for row in asyncio.run(rows()):
        print(row)
    return 0
