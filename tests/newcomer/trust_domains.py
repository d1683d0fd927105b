"""What `make up` as root separates (deploy/local/fleetlib/osusers.py), read from the running processes and files:
the OS user each component runs as (/proc/<pid>/status), who owns each key, and whether another component's
user can read it (a real read attempt, as that user, with setpriv)."""

from __future__ import annotations

import pwd
import subprocess
from pathlib import Path

from fleetlib import audit_key, osusers, proc, services, tsa, witness


def running_uid(component: str) -> int:
    """The real uid of `component`'s process, as the kernel has it (its pid file is fleetctl's)."""
    pid = proc.read_pid(component)
    assert pid is not None, f"{component} has no pid file: is it running?"
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert len(set(uids)) == 1, f"{component}: real, effective, saved and fs uids differ: {uids}"
    return int(uids[0])


def secrets() -> dict[str, list[Path]]:
    """component -> the files it alone may read."""
    out = {"codex-lineage": [audit_key.PRIVATE, audit_key.CHECKPOINTS], "tsa": [tsa.KEY],
           "witness": [witness.KEY, witness.DB]}
    for name in services.SERVICES:
        out.setdefault(name, []).append(services.PRODUCER_KEYS / f"{name}.pem")
    return out


def read_as(uid: int, path: Path) -> subprocess.CompletedProcess[str]:
    """`cat path` as `uid` (its own group, no other groups): what a process of that user can read."""
    gid = pwd.getpwuid(uid).pw_gid
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "cat", str(path)],
                          capture_output=True, text=True, errors="replace", timeout=30, check=False)  # SQLite too


def users() -> dict[str, int]:
    """component -> the uid it must run as."""
    names = [*services.SERVICES, "tsa", "witness"]
    return {name: pwd.getpwnam(str(osusers.user_of(name))).pw_uid for name in names}


def private(path: Path, uid: int) -> str | None:
    """Why `path` is not `uid`'s alone (None: owned by it, no access for group or others)."""
    info = path.stat()
    if info.st_uid != uid:
        return f"{path} is owned by uid {info.st_uid}, not {uid}"
    if info.st_mode & 0o077:
        return f"{path} has mode {oct(info.st_mode & 0o777)}"
    return None

