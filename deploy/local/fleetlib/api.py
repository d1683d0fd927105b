"""Importable API for tests and scripts: ensure_up() and the endpoint table."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from . import config, registry, supervisor

ENDPOINTS: dict[str, str] = config.endpoints()


def endpoints() -> dict[str, str]:
    """Endpoints for the current environment (ports may be overridden by MOE_*_PORT variables)."""
    return config.endpoints()


def _in_thread(run: Callable[[], None], name: str) -> None:
    """Run `run` here, or on a helper thread when an event loop is running here (asyncio.run inside)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
    else:
        worker = threading.Thread(target=run, name=name)
        worker.start()
        worker.join()


def migrate() -> None:
    """The fleet store's tables and grants, as `fleetctl up` makes them before the services start (Postgres
    must be up): for tests and scripts that start services themselves."""
    from . import services

    _in_thread(services.migrate_fleet_store, "fleetctl-migrate")


def ensure_up(components: list[str] | None = None) -> None:
    """Start whatever of `components` (default: infra) is not running and wait until all are ready.

    Raises RuntimeError (the details were printed) when a component fails. Safe to call from inside
    a running event loop: the work then happens on a helper thread.
    """
    comps = registry.resolve(components, "infra")
    result: list[int] = []

    def run() -> None:
        with supervisor.locked():
            result.append(asyncio.run(supervisor.up_async(comps)))

    _in_thread(run, "fleetctl-ensure-up")
    if result != [0]:
        raise RuntimeError(f"fleetctl: could not bring up {[c.name for c in comps]} (see output above)")
