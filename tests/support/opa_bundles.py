"""The control plane's policy bundle server (control_plane.policy.bundle_server) in the test process, over a copy of
policy/opa and a new RSA key, with a real OPA polling it (tests.support.opa.polling_engine): the change in force is
the one `approved` gives (the test's own, or read from Postgres as the control plane reads it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from control_plane.policy.bundle_server import PolicyBundles
from control_plane.policy.settings import PolicySettings
from moe_core.policy.bundle import opa_config
from moe_core.runtime.openai_error import install_error_handlers
from tests.support import opa
from tests.support.uvicorn_thread import bind, serve, url


class Served:
    def __init__(self, work: Path, token: str,
                 approved: Callable[[], Awaitable[dict[str, Any] | None]] | None = None) -> None:
        self.policy_dir = work / "opa"
        self.policy_dir.mkdir()
        for name, text in opa.policy_modules():
            (self.policy_dir / name).write_bytes(text)
        key, self.public = opa.rsa_keys(work)
        self.settings = PolicySettings(opa_url="http://unused", opa_policy_dir=self.policy_dir,
                                       opa_token=SecretStr(token), opa_bundle_signing_key=str(key),
                                       opa_bundle_wait_s=20)
        self.change: dict[str, Any] | None = None  # the change in force, unless `approved` reads it

        async def given() -> dict[str, Any] | None:
            return self.change

        self.bundles = PolicyBundles(self.settings, approved or given)
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(self.bundles.router)
        sock = bind()
        self.url = url("127.0.0.1", sock)
        self.stop = serve(app, sock, what="the bundle server")


@contextmanager
def served_bundle(work: Path, token: str, approved: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
                  min_delay_s: int = 1, max_delay_s: int = 5, long_poll_s: int = 0,
                  ) -> Iterator[tuple[Served, opa.Engine]]:
    """The bundle server, then OPA polling it with `token` (ready once it holds the bundle: its authorization
    comes in it), with opa_config's min_delay_s, max_delay_s and long_poll_s."""
    server = Served(work, token, approved)
    try:
        (work / "engine").mkdir()
        config = opa_config(server.url, server.public, token=True, min_delay_s=min_delay_s,
                            max_delay_s=max_delay_s, long_poll_s=long_poll_s)
        with opa.polling_engine(work / "engine", config, token=token) as engine:
            yield server, engine
    finally:
        server.stop()
