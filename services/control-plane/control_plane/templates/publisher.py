"""The control plane's side of the published tenant templates (moe_core.llm.published_templates): each tenant's
`expert_templates` rows written into its Redis key, under a per-tenant Postgres advisory lock, so two control-plane
replicas changing one tenant's templates at once leave the later state, never an older one."""

from __future__ import annotations

import json

import asyncpg
from redis.asyncio import Redis

from moe_core.llm.published_templates import VERSION, published_key
from moe_core.llm.tenant_templates import LIST, StoredTemplate, body_of

LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7028))"  # one tenant's publishes, one at a time
TENANTS = "SELECT DISTINCT tenant_id FROM expert_templates"


def encode(stored: list[StoredTemplate]) -> str:
    return json.dumps({"version": VERSION, "templates": {t.name: json.loads(body_of(t.template)) for t in stored}})


class TemplatePublisher:
    """The control plane's side: each tenant's rows into its key."""

    def __init__(self, pool: asyncpg.Pool, redis: Redis, namespace: str) -> None:
        self.pool = pool
        self.redis = redis
        self.namespace = namespace

    async def publish(self, tenant: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(LOCK, f"expert_templates/{tenant}")
            stored = [StoredTemplate.of(r) for r in await conn.fetch(LIST, [tenant])]
            key = published_key(self.namespace, tenant)
            if stored:
                await self.redis.set(key, encode(stored))
            else:
                await self.redis.delete(key)

    async def publish_all(self) -> int:
        """Every tenant with templates, and every tenant whose key is there without them (deleted while this
        control plane was down); how many tenants were published."""
        tenants = {r["tenant_id"] for r in await self.pool.fetch(TENANTS)}
        head = published_key(self.namespace, "")
        tenants |= {str(k)[len(head):] async for k in self.redis.scan_iter(match=f"{head}*", count=500)}
        for tenant in sorted(tenants):
            await self.publish(tenant)
        return len(tenants)
