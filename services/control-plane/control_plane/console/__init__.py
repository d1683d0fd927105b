"""The admin console: a server-rendered UI under /console (Jinja2 templates + htmx, every asset served from
this package). See docs/console.md."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from redis.asyncio import Redis

from control_plane.console.accounts import AccountPages
from control_plane.console.admin_pages import AdminPages
from control_plane.console.core import ConsoleCore
from control_plane.console.data_health import DataHealthPage
from control_plane.console.document_pages import DocumentPages
from control_plane.console.fleet import FleetPage
from control_plane.console.guardrail_pages import GuardrailPages
from control_plane.console.oidc_login import OidcLogin
from control_plane.console.oidc_settings import OidcSettings
from control_plane.console.operations import OperationPages
from control_plane.console.request_pages import RequestPages
from control_plane.console.settings import ConsoleSettings
from control_plane.console.simulation_pages import SimulationPages
from control_plane.console.template_pages import TemplatePages
from moe_core.access.keystore import KeyStore
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings


def mount_console(app: FastAPI, settings: FleetSettings, bus: Bus, redis: Redis, store: Callable[[], KeyStore],
                  oidc: OidcSettings | None = None) -> ConsoleCore | None:
    """Add the console's routes to the control-plane app (unless MOE_CONSOLE_ENABLED=false); OpenID Connect
    sign-in too when MOE_OIDC_ISSUER is set."""
    console = ConsoleSettings()
    if not console.enabled:
        return None
    core = ConsoleCore(redis, settings.topic_namespace, store, app, console)
    RequestPages(core)  # Overview (the first page) and Requests
    AccountPages(core)
    FleetPage(core, settings, redis, bus)
    OperationPages(core)
    DocumentPages(core)  # tenant documents held for review
    GuardrailPages(core)
    SimulationPages(core)  # guardrail rule changes: simulations and proposals (four-eyes)
    DataHealthPage(core, console)
    AdminPages(core)
    TemplatePages(core)
    oidc = oidc or OidcSettings()
    if oidc.enabled:
        OidcLogin(core, oidc, redis, settings.topic_namespace, bus)
    app.include_router(core.router)
    return core
