"""The admin console: a server-rendered UI under /console (Jinja2 templates + htmx, every asset served from
this package). See docs/console.md."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from redis.asyncio import Redis

from gateway.console.accounts import AccountPages
from gateway.console.core import ConsoleCore
from gateway.console.fleet import FleetPage
from gateway.console.operations import OperationPages
from gateway.console.settings import ConsoleSettings
from gateway.keystore import KeyStore
from moe_core.audit.store import AuditStore
from moe_core.bus import Bus
from moe_core.settings import FleetSettings


def mount_console(app: FastAPI, settings: FleetSettings, bus: Bus, redis: Redis, store: Callable[[], KeyStore],
                  audit_store: Callable[[], Awaitable[AuditStore]]) -> ConsoleCore | None:
    """Add the console's routes to the gateway app (unless MOE_CONSOLE_ENABLED=false)."""
    console = ConsoleSettings()
    if not console.enabled:
        return None
    core = ConsoleCore(redis, settings.topic_namespace, store, app, console)
    AccountPages(core)
    FleetPage(core, settings, redis, bus)
    OperationPages(core, audit_store)
    app.include_router(core.router)
    return core
