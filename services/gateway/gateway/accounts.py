"""Tenants, keys, limits and usage as one part of the gateway app: the admin and usage routes, the limits
hook of the chat flow (metering) and the fleet-wide key-change channel, started and stopped together."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from redis.asyncio import Redis

from gateway import template_select
from gateway.admin_api import AdminApi
from gateway.key_events import KeyEvents
from gateway.keystore import KeyStore
from gateway.limits import Limiter
from gateway.metering import Metering
from gateway.settings import GatewaySettings
from gateway.usage import UsageApi, UsageStore
from gateway.usage_metrics import tenant_metrics_router
from moe_core.bus import Bus


class Accounts:
    def __init__(self, settings: GatewaySettings, bus: Bus, redis: Redis, store: Callable[[], KeyStore]) -> None:
        self.store = store
        self._usage: UsageStore | None = None
        self.limiter = Limiter(redis, settings.topic_namespace)
        self.metering = Metering(settings, self.limiter, self.usage)
        self.events = KeyEvents(redis, settings.topic_namespace, lambda: self.store().invalidate())
        self.router = APIRouter()
        self.router.include_router(AdminApi(bus, store, self.events, template_select.load(settings)).router)
        self.router.include_router(UsageApi(self.usage, store, self.limiter).router)
        self.router.include_router(tenant_metrics_router(store))  # GET /v1/admin/metrics (admin keys)

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
