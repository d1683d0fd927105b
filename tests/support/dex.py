"""A real OpenID Connect provider for the console's sign-in tests: Dex (built from the Go module proxy into
.data/bin by fleetlib.gotools), started with a generated config — in-memory storage, static clients, static
password users whose bcrypt hashes are made here at run time — on a free loopback port, stopped afterwards."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import httpx
import yaml

from tests.support.fleet import REPO
from tests.support.ports import free_port


@dataclass(frozen=True)
class Client:
    id: str
    secret: str
    redirect_uri: str


@dataclass(frozen=True)
class User:
    email: str
    password: str
    name: str
    groups: tuple[str, ...] = ()  # the ID token's groups claim (asked for with the `groups` scope)
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # Dex's userID of the static password

    @property
    def subject(self) -> str:
        """The `sub` Dex puts in this user's ID token: its IDTokenSubject message (user id, connector id `local`,
        protobuf fields 1 and 2) in unpadded base64url, what an operator reads off the provider."""
        message = b"".join(bytes([tag, len(value)]) + value
                           for tag, value in ((0x0A, self.user_id.encode()), (0x12, b"local")))
        return base64.urlsafe_b64encode(message).rstrip(b"=").decode()


@dataclass(frozen=True)
class Dex:
    issuer: str
    clients: dict[str, Client]
    users: dict[str, User]


def binary() -> Path:
    import sys

    local = REPO / "deploy" / "local"
    if str(local) not in sys.path:
        sys.path.insert(0, str(local))
    from fleetlib import gotools

    gotools.ensure_source_built("dex")  # a few minutes once, then cached (.data/bin)
    return gotools.binary("dex")


def _config(issuer: str, port: int, clients: list[Client], users: list[User]) -> dict[str, object]:
    return {
        "issuer": issuer,
        "storage": {"type": "memory"},
        "web": {"http": f"127.0.0.1:{port}"},
        "oauth2": {"skipApprovalScreen": True, "responseTypes": ["code"]},
        "enablePasswordDB": True,
        "logger": {"level": "info"},
        "staticClients": [{"id": c.id, "secret": c.secret, "name": c.id, "redirectURIs": [c.redirect_uri]}
                          for c in clients],
        # Dex refuses a bcrypt cost below 10 at sign-in
        "staticPasswords": [{"email": u.email, "username": u.name, "userID": u.user_id,
                             "hash": bcrypt.hashpw(u.password.encode(), bcrypt.gensalt(rounds=10)).decode(),
                             **({"groups": list(u.groups)} if u.groups else {})}
                            for u in users],
    }


@contextmanager
def running_dex(clients: list[Client], users: list[User], timeout_s: float = 60.0) -> Iterator[Dex]:
    """Dex on 127.0.0.1 with these clients and users, ready (its discovery document answers)."""
    exe = binary()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/dex"
    with tempfile.TemporaryDirectory(prefix="dex-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(_config(issuer, port, clients, users)))
        log = (Path(tmp) / "dex.log").open("wb")
        proc = subprocess.Popen([str(exe), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"dex exited ({proc.returncode}): {(Path(tmp) / 'dex.log').read_text()[-2000:]}")
                try:
                    found = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
                    if found.status_code == 200 and json.loads(found.text)["issuer"] == issuer:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dex did not answer within {timeout_s} s")
                time.sleep(0.2)
            yield Dex(issuer, {c.id: c for c in clients}, {u.email: u for u in users})
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
