"""Delete the Kafka topics a test session created, when it ends.

Every test works in its own topic namespace (about 18 topics each). Without clean-up a local broker
collects thousands of topics across runs and then needs minutes to load them at start. At session end
the topics of this session's namespaces (`<kind>-<session>-<random>`, tests/support/namespaces.py) are
deleted — never another session's on the same broker, the fleet's own (`moe.`) or Kafka's internal
topics. A broker that is not running is left alone.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient

from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings
from tests.support.namespaces import of_this_session

BATCH = 100


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


async def _list(bootstrap: str, settings: FleetSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_kwargs(settings, bootstrap=bootstrap), request_timeout_ms=10_000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete(bootstrap: str, topics: list[str], settings: FleetSettings) -> None:
    admin = AIOKafkaAdminClient(**client_kwargs(settings, bootstrap=bootstrap), request_timeout_ms=60_000)
    await admin.start()
    try:
        for i in range(0, len(topics), BATCH):
            await admin.delete_topics(topics[i:i + BATCH], timeout_ms=60_000)
    finally:
        await admin.close()


def to_delete(existing: Iterable[str]) -> list[str]:
    return sorted(t for t in existing if of_this_session(t))


def clean(bootstrap: str, admin_env: dict[str, str]) -> int:
    """Delete the session's topics as the broker's admin (MOE_KAFKA_* of `admin_env`); returns how many were
    deleted (0 when the broker is gone)."""
    if not _reachable(bootstrap):
        return 0
    try:
        settings = FleetSettings(**{k.removeprefix("MOE_").lower(): v for k, v in admin_env.items()})
        doomed = to_delete(asyncio.run(_list(bootstrap, settings)))
        if doomed:
            asyncio.run(_delete(bootstrap, doomed, settings))
        return len(doomed)
    except Exception:  # clean-up must never fail a session
        return 0
