"""Detached processes tracked by pid files: spawn, liveness (verified cmdline), stop, log tails."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from . import config

# Popen handles of the processes started by this CLI run (to reap them and read exit codes).
_children: dict[str, subprocess.Popen[bytes]] = {}


def read_pid(name: str) -> int | None:
    try:
        return int(config.pid_path(name).read_text().strip())
    except (OSError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def alive(name: str, match: str) -> int | None:
    """The pid of component `name` if its pid file points to a live process whose cmdline has `match`."""
    pid = read_pid(name)
    if pid is None:
        return None
    child = _children.get(name)
    if child is not None:
        # Our own child: poll() is the truth. Its cmdline may still be Python's for a moment before exec.
        return pid if child.pid == pid and child.poll() is None else None
    if _is_zombie(pid) or match not in cmdline(pid):
        return None
    return pid


def exit_code(name: str) -> int | None:
    child = _children.get(name)
    return None if child is None else child.poll()


def rotate(log: Path, limit: int | None = None) -> bool:
    """Set a log past `limit` bytes (MOE_FLEET_LOG_ROTATE_MB) aside as <log>.1, dropping the previous one: a
    component's logs stay within about twice the limit however often it restarts. The running process keeps
    its own file, so this happens only before a start."""
    limit = config.LOG_ROTATE_BYTES if limit is None else limit
    try:
        if log.stat().st_size <= limit:
            return False
    except FileNotFoundError:
        return False
    log.replace(log.with_name(log.name + ".1"))
    return True


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start a detached process (own session), output appended to its log, and write its pid file."""
    config.LOGS.mkdir(parents=True, exist_ok=True)
    config.RUN.mkdir(parents=True, exist_ok=True)
    log = config.log_path(name)
    rotate(log)
    with log.open("ab") as out:
        stamp = datetime.now().isoformat(timespec="seconds")
        out.write(f"\n===== fleetctl: starting {name} at {stamp}: {' '.join(argv)}\n".encode())
        out.flush()
        child = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd or config.REPO,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            umask=0o077 if user else -1,  # what a component of its own user makes is its alone
        )
    _children[name] = child
    config.pid_path(name).write_text(f"{child.pid}\n")
    return child.pid


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def stop(name: str, match: str, timeout: float = 15.0, sig: int = signal.SIGTERM) -> str:
    """Signal (SIGTERM) our process (verified by cmdline), SIGKILL after `timeout`; remove the pid file."""
    pid = alive(name, match)
    pidfile = config.pid_path(name)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return "not running"
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return "not running"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)  # pid leads its own session/group (start_new_session)
        except ProcessLookupError:
            pass
        time.sleep(0.3)
        pidfile.unlink(missing_ok=True)
        return f"killed (pid {pid}, no exit {timeout:.0f}s after SIGTERM)"
    pidfile.unlink(missing_ok=True)
    return f"stopped (pid {pid})"


def tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])
