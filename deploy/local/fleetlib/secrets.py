"""Generated passwords of the local stores, in .data/secrets.json (mode 0600, never committed).

A store's password is generated when the store is initialised from scratch (first start on a fresh clone:
no data directory yet) and applied then: Postgres (scram-sha-256, no trust), Neo4j (auth enabled) and
Redis (requirepass). A store whose data directory predates this (initialised without a password) has no
entry and keeps running without one, so the endpoints carry a password exactly when the store needs it.
Remove the store's data directory (and `fleetctl up` it) to move it to a password.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets as token
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import config


def path() -> Path:
    return config.DATA / "secrets.json"


def _load() -> dict[str, str]:
    try:
        return dict(json.loads(path().read_text()))
    except (OSError, ValueError):
        return {}


def get(name: str) -> str | None:
    """The password of `name` (postgres, postgres-admin, neo4j, redis), None if it runs without one."""
    return _load().get(name)


_THREADS = threading.Lock()  # components are prepared side by side: read-modify-write one at a time


@contextmanager
def _locked() -> Iterator[None]:
    """One writer at a time, across threads and fleetctl processes."""
    config.DATA.mkdir(parents=True, exist_ok=True)
    with _THREADS, open(path().with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(stored: dict[str, str]) -> None:
    tmp = path().with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(stored, out, indent=1, sort_keys=True)
    os.replace(tmp, path())


def generate(name: str) -> str:
    """The password of `name`, generated (and stored, 0600) if there is none yet."""
    with _locked():
        stored = _load()
        if name not in stored:
            stored[name] = token.token_urlsafe(24)
            _write(stored)
        path().chmod(0o600)
        return stored[name]


def forget(name: str) -> None:
    """Drop a password (its store is being initialised again from scratch)."""
    with _locked():
        stored = _load()
        if stored.pop(name, None) is not None:
            _write(stored)
