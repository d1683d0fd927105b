"""The Component record every infra piece and service is described by."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from . import config


@dataclass(frozen=True)
class Component:
    name: str
    group: str  # "infra" or "services"
    port_key: str  # key into config.PORT_DEFAULTS
    prepare: Callable[[], list[str]]  # create dirs/config files, return the argv to start
    check: Callable[[], Awaitable[object]]  # raises (or returns False) while not ready
    deadline: float = 60.0  # seconds to become ready after start
    match: Callable[[], str] = field(default=lambda: "")  # token that must be in /proc/<pid>/cmdline
    stop_timeout: float = 15.0
    stop_signal: int = signal.SIGTERM
    env: Callable[[], dict[str, str]] | None = None
    clients: tuple[str, ...] = ("httpx",)  # client modules the check imports (preloaded)
    user: str | None = None  # run as this OS user (postgres refuses root)
    ready: str = ""  # what `check` asks, in words (deploy/local/README.md's table is generated from it)

    @property
    def port(self) -> int:
        return config.port(self.port_key)
