"""Separate OS users for the local fleet when fleetctl runs as root (as `make up` does in CI).

As root, every fleet service runs under an OS user of its own (`moe-<service>`; codex-lineage's is `moe-lineage`),
and so do the timestamp authority (`moe-tsa`) and the witness (`moe-witness`); `make replay` runs as `moe-replay`.
Each is a system user without a login shell, made once (`useradd --system`, idempotent: the users are the
machine's, shared by every checkout on it). What a component alone may read is chowned to its user, mode 0600 in
a folder nobody else may write: codex-lineage's audit signing key and checkpoint file, the TSA's key, the witness's
key and database, each service's producer signing key. Public material (public keys, keyring, TSA chain, witness
vkey, the producers' list) stays readable by all. So no stage, and not `make replay`, can read another's key or
environment (/proc/<pid>/environ is its owner's). Each user's HOME is a folder of its own under .data/home/.

Not root (a developer's shell): every component runs as the caller, one trust domain (docs/audit.md).
`MOE_FLEET_OS_USERS=0` keeps root's components as root too (a debugging escape hatch).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

from . import config

NAMED = {"codex-lineage": "moe-lineage", "tsa": "moe-tsa", "witness": "moe-witness", "replay": "moe-replay"}
_LOCK = threading.Lock()
_REACHED: set[str] = set()  # users let through to the interpreter in this process


def enabled() -> bool:
    return os.geteuid() == 0 and os.environ.get("MOE_FLEET_OS_USERS", "1") != "0"


def user_of(component: str) -> str | None:
    """The OS user `component` runs as (None: the caller's own)."""
    if not enabled():
        return None
    return NAMED.get(component, f"moe-{component}")


def ensure(user: str) -> pwd.struct_passwd:
    """The system user `user` (and its group), made when missing; another checkout making it too is fine."""
    with _LOCK:
        for _ in range(10):
            try:
                found = pwd.getpwnam(user)
                break
            except KeyError:
                error = _useradd(user)
            if error is not None:
                time.sleep(0.5)  # /etc/passwd locked by another useradd
        else:
            raise RuntimeError(f"useradd {user} failed: {error}")
        if user not in _REACHED:
            reach_interpreter(user)
            _REACHED.add(user)
        return found


def _useradd(user: str) -> str | None:
    """None when made (or made meanwhile by another checkout: exit code 9), else useradd's complaint."""
    argv = [shutil.which("useradd") or "/usr/sbin/useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    return None if done.returncode in (0, 9) else f"exit code {done.returncode}: {done.stderr.strip()}"


def traversable(path: Path) -> None:
    """Every folder above `path` lets others through (o+x): a temporary MOE_DATA_DIR is made 0700."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def reach_interpreter(user: str) -> None:
    """`user` may enter every folder on the way to the Python the services run with. A folder others cannot enter
    (pyenv's Python lives under /root, 0700) gets an ACL entry letting `user` alone through (x: no listing, and its
    0700 subfolders stay closed), never a wider mode; Debian's acl package is installed for it when missing."""
    python = Path(os.path.realpath(config.PYTHON))
    closed = [p for p in reversed(python.parents) if not p.stat().st_mode & stat.S_IXOTH]
    if not closed:
        return
    from . import install

    install.ensure_apt(["acl"])
    for folder in closed:
        entries = subprocess.run(["getfacl", "-cp", str(folder)], capture_output=True, text=True,  # noqa: S603, S607
                                 check=False).stdout.split()
        if f"user:{user}:--x" not in entries:
            print(f"fleetctl: letting {user} through {folder} (ACL user:{user}:x) to reach {python}", flush=True)
            subprocess.run(["setfacl", "-m", f"u:{user}:x", str(folder)], check=True)  # noqa: S603, S607


def own(path: Path, user: str | None, mode: int) -> None:
    """`path` (when it exists) owned by `user` with `mode`; nothing when components run as the caller."""
    if user is None or not path.exists():
        return
    pw = ensure(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)


def home(user: str | None) -> dict[str, str]:
    """HOME (and the caches under it) for a component running as `user`: a folder of its own, 0700."""
    if user is None:
        return {}
    folder = config.DATA / "home" / user
    folder.mkdir(parents=True, exist_ok=True)
    traversable(folder)
    own(folder, user, 0o700)
    return {"HOME": str(folder), "XDG_CACHE_HOME": str(folder / ".cache")}


def private_folder(folder: Path, user: str | None, secrets: list[Path]) -> None:
    """`folder` owned by `user` (0755: its public files stay readable), each of `secrets` 0600 by `user`."""
    if user is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    traversable(folder)
    own(folder, user, 0o755)
    for secret in secrets:
        own(secret, user, 0o600)


def drop_to(user: str) -> None:
    """This process becomes `user` (no supplementary groups), for good: before exec'ing an operator command."""
    pw = ensure(user)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
