"""Keys, limits and usage as the edge needs them: the limiter, the limits hook of the chat flow (metering,
which publishes each settled request's usage to the `usage` topic; the control plane writes it to Postgres)
and the fleet-wide key-change channel that clears this replica's key cache, started and stopped together.
Administering keys and tenants, and the usage rows, are the control plane's."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.key_events import KeyEvents
from moe_core.access.keystore import KeyStore
from moe_core.access.limits import Limiter
from moe_core.contracts import UsageCharged
from moe_core.runtime.bus import Bus


class Accounts:
    def __init__(self, settings: GatewaySettings, redis: Redis, store: Callable[[], KeyStore], bus: Bus) -> None:
        self.store = store
        self.bus = bus
        self.limiter = Limiter(redis, settings.topic_namespace)
        self.metering = Metering(settings, self.limiter, self.publish_usage)
        self.events = KeyEvents(redis, settings.topic_namespace, lambda: self.store().invalidate())

    async def publish_usage(self, charge: UsageCharged) -> None:
        """A settled request's usage, on the `usage` topic (keyed by its response id), acknowledged."""
        await self.bus.publish(charge, self.bus.topics.usage)

    async def start(self) -> None:
        """After the key store is open: the key-change subscription."""
        await self.events.start()

    async def close(self) -> None:
        await self.events.close()
        await self.metering.aclose()
