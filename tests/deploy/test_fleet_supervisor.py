"""The local supervisor's report when a component it did not start never answers: a process alive under its pid
file that answers somewhere else (another network namespace or container) is named as such, with the way out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fleetlib import config, proc, supervisor
from fleetlib.component import Component

from tests.support import ports

pytestmark = pytest.mark.unit


async def _refused() -> None:
    raise ConnectionRefusedError(111, "Connect call failed")


@pytest.fixture(autouse=True)
def free_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """The components' port (the timestamp authority's key, moved): one nothing listens on."""
    port = ports.free_port(config.HOST)
    monkeypatch.setenv("MOE_TSA_PORT", str(port))
    return port


def _component(name: str, token: str) -> Component:
    return Component(name=name, group="infra", port_key="tsa", prepare=lambda: [], check=_refused, deadline=0.6,
                     match=lambda: token)


async def _bring_up(component: Component) -> tuple[bool, bool]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return await supervisor._bring_up(component, pool)


def _wait_exec(pid: int, token: str) -> None:
    """Until the child has exec'ed: for a moment after Popen its cmdline is still this test's (CI, under load)."""
    deadline = time.monotonic() + 10
    while token not in proc.cmdline(pid):
        assert time.monotonic() < deadline, f"pid {pid} never ran with {token} in its cmdline"
        time.sleep(0.01)


def test_a_component_running_before_that_never_answers_is_reported_with_the_way_out(
        capsys: pytest.CaptureFixture[str]) -> None:
    name, token = f"hint-test-{uuid.uuid4().hex[:8]}", f"hint-token-{uuid.uuid4().hex}"
    elsewhere = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", token])
    _wait_exec(elsewhere.pid, token)
    config.pid_path(name).parent.mkdir(parents=True, exist_ok=True)
    config.pid_path(name).write_text(str(elsewhere.pid))
    try:
        started, ok = asyncio.run(_bring_up(_component(name, token)))
        out = capsys.readouterr().out
    finally:
        elsewhere.kill()
        elsewhere.wait()
        config.pid_path(name).unlink(missing_ok=True)
    assert (started, ok) == (False, False)
    assert f"FAILED {name}: not ready after 1s: ConnectionRefusedError" in out
    assert f"{name} was already running when this command began (pid {elsewhere.pid}" in out
    assert "`make down` stops it and `make up` starts it again here" in out


def test_a_component_this_command_started_is_reported_without_it(capsys: pytest.CaptureFixture[str]) -> None:
    name, token = f"hint-test-{uuid.uuid4().hex[:8]}", f"hint-token-{uuid.uuid4().hex}"
    component = Component(name=name, group="infra", port_key="tsa", deadline=0.6, check=_refused,
                          prepare=lambda: [sys.executable, "-c", "import time; time.sleep(60)", token],
                          match=lambda: token)
    try:
        started, ok = asyncio.run(_bring_up(component))
        out = capsys.readouterr().out
    finally:
        proc.stop(name, token, timeout=5)
        config.pid_path(name).unlink(missing_ok=True)
    assert (started, ok) == (True, False)
    assert f"FAILED {name}: not ready after 1s" in out and "already running" not in out


def test_a_component_whose_preparation_gives_no_command_is_reported_not_crashed(
        capsys: pytest.CaptureFixture[str]) -> None:
    name = f"hint-test-{uuid.uuid4().hex[:8]}"
    component = Component(name=name, group="infra", port_key="tsa", deadline=0.6, check=_refused,
                          prepare=lambda: [], match=lambda: name)
    started, ok = asyncio.run(_bring_up(component))
    assert (started, ok) == (True, False)
    assert f"FAILED {name}: preparing gave no command to start" in capsys.readouterr().out
