"""up / down / status: start detached processes, wait for real readiness, stop only what we started."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
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


async def _probe(comp: Component, timeout: float = 10) -> str | None:
    """None when ready, else the reason."""
    try:
        if await asyncio.wait_for(comp.check(), timeout) is False:
            return "check returned False"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


async def _wait_ready(comp: Component) -> str | None:
    deadline = time.monotonic() + comp.deadline
    reason = "not checked"
    while True:
        if proc.alive(comp.name, comp.match()) is None:
            code = proc.exit_code(comp.name)
            return f"process exited (exit code {code})" if code is not None else "process is gone"
        reason = await _probe(comp) or ""
        if not reason:
            return None
        if time.monotonic() > deadline:
            return f"not ready after {comp.deadline:.0f}s: {reason}"
        await asyncio.sleep(POLL)


def _start(comp: Component) -> str | None:
    """Prepare and spawn; None on success, else the reason."""
    if _port_busy(comp.port):
        return f"port {config.HOST}:{comp.port} is already in use by a process fleetctl did not start"
    try:
        argv = comp.prepare()
    except Exception as exc:
        return f"preparing failed: {exc}"
    env = comp.env() if comp.env else None
    pid = proc.spawn(comp.name, argv, env=env, user=comp.user)
    print(f"{comp.name}: started (pid {pid}), waiting up to {comp.deadline:.0f}s", flush=True)
    return None


def _report(comp: Component, reason: str) -> None:
    log = config.log_path(comp.name)
    print(f"\nFAILED {comp.name}: {reason}\nlog: {log} (last 20 lines)\n{proc.tail(log, 20)}\n", flush=True)


async def _up_stage(comps: list[Component]) -> tuple[list[str], list[str]]:
    """Start what is not running, then wait for all. Returns (started, failed) names."""
    started: list[str] = []
    to_start: list[Component] = []
    waiting: list[Component] = []
    for comp in comps:
        if proc.alive(comp.name, comp.match()) is None:
            config.pid_path(comp.name).unlink(missing_ok=True)
            to_start.append(comp)
        else:
            waiting.append(comp)
    failed: list[str] = []
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=max(1, len(to_start))) as pool:
        errors = await asyncio.gather(*(loop.run_in_executor(pool, _start, c) for c in to_start))
    for comp, err in zip(to_start, errors, strict=True):
        if err:
            _report(comp, err)
            failed.append(comp.name)
        else:
            started.append(comp.name)
            waiting.append(comp)
    t0 = time.monotonic()
    results = await asyncio.gather(*(_wait_ready(c) for c in waiting))
    for comp, err in zip(waiting, results, strict=True):
        if err:
            _report(comp, err)
            failed.append(comp.name)
        elif comp.name in started:
            print(f"{comp.name}: ready on {config.HOST}:{comp.port} ({time.monotonic() - t0:.1f}s)", flush=True)
    return started, failed


async def up_async(comps: list[Component], do_install: bool = True) -> int:
    infra = [c for c in comps if c.group == "infra"]
    if do_install and infra:
        await asyncio.to_thread(install.ensure, [c.name for c in infra])
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
    ready = "yes" if pid and await _probe(comp, timeout=5) is None else "no"
    state = "running" if pid else "stopped"
    return f"{comp.name:<14} {state:<8} pid {pid or '-':<8} port {comp.port:<6} ready {ready}"


def status(comps: list[Component]) -> int:
    async def rows() -> list[str]:
        return await asyncio.gather(*(_status_row(c) for c in comps))

    for row in asyncio.run(rows()):
        print(row)
    return 0
