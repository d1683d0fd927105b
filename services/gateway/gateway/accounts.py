"""Keys, limits and usage as the edge needs them: the limiter, the limits hook of the chat flow (metering,
which settles usage into Postgres: moe_core.access.usage_store) and the fleet-wide key-change channel that
clears this replica's key cache, started and stopped together. Administering keys and tenants is the
control plane's."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.key_events import KeyEvents
from moe_core.access.keystore import KeyStore
from moe_core.access.limits import Limiter
from moe_core.access.usage_store import UsageStore


class Accounts:
    def __init__(self, settings: GatewaySettings, redis: Redis, store: Callable[[], KeyStore]) -> None:
        self.store = store
        self._usage: UsageStore | None = None
        self.limiter = Limiter(redis, settings.topic_namespace)
        self.metering = Metering(settings, self.limiter, self.usage)
        self.events = KeyEvents(redis, settings.topic_namespace, lambda: self.store().invalidate())

    def usage(self) -> UsageStore:
        if self._usage is None:
            raise RuntimeError("the usage store is not open yet")
        return self._usage

    async def start(self) -> None:
        """After the key store is open: the usage store (its tables are the migrator's), then the key-change
        subscription."""
        self._usage = UsageStore(self.store().pool)
        await self.events.start()

    async def close(self) -> None:
        await self.events.close()
        await self.metering.aclose()
