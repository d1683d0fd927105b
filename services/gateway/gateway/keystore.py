"""API keys in Postgres: only a SHA-256 hash of each key is stored; each key has tenants and a role."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import asyncpg

Role = Literal["admin", "user"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('admin', 'user')),
    tenant_ids  text[] NOT NULL CHECK (cardinality(tenant_ids) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
)
"""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    tenant_ids: tuple[str, ...]

    @property
    def default_tenant(self) -> str:
        return self.tenant_ids[0]


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(key_id: str) -> str:
    return f"moe-{key_id}-{secrets.token_urlsafe(32)}"


class KeyStore:
    def __init__(self, pool: asyncpg.Pool, cache_ttl_s: float = 10.0) -> None:
        self.pool = pool
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    @classmethod
    async def connect(cls, dsn: str, cache_ttl_s: float = 10.0) -> KeyStore:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5)
        store = cls(pool, cache_ttl_s)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(424242)")
            try:
                await conn.execute(SCHEMA)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(424242)")

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def create(self, name: str, role: Role, tenant_ids: list[str]) -> tuple[ApiKey, str]:
        """Create a key; the token is returned once and never stored."""
        if role not in ("admin", "user"):
            raise ValueError(f"unknown role {role!r}")
        if not tenant_ids or any(not t.strip() for t in tenant_ids):
            raise ValueError("a key needs at least one non-empty tenant id")
        key_id = secrets.token_hex(6)
        token = new_token(key_id)
        await self.pool.execute(
            "INSERT INTO api_keys (id, name, key_hash, role, tenant_ids) VALUES ($1, $2, $3, $4, $5)",
            key_id, name, hash_key(token), role, tenant_ids,
        )
        return ApiKey(key_id, name, role, tuple(tenant_ids)), token

    async def revoke(self, key_id: str) -> bool:
        status = await self.pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
        )
        self._cache.clear()
        return status.endswith(" 1")

    async def list(self) -> list[dict[str, object]]:
        rows = await self.pool.fetch(
            "SELECT id, name, role, tenant_ids, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        return [dict(r) for r in rows]

    async def verify(self, token: str) -> ApiKey | None:
        digest = hash_key(token)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        row = await self.pool.fetchrow(
            "SELECT id, name, role, tenant_ids FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", digest
        )
        key = ApiKey(row["id"], row["name"], row["role"], tuple(row["tenant_ids"])) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_ttl_s, key)
        return key
