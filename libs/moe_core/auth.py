"""Verifying a caller outside the gateway: the gateway's API keys (the same Postgres key store, looked up
by the key's SHA-256 hash, read only) and an in-cluster service key (a setting, a Secret in Helm).

A key is accepted when it exists, is neither revoked nor expired and its default tenant is not disabled.
Accepted keys are remembered for `cache_ttl_s` (short: a revocation takes effect within it); unknown keys
are never cached, so guessed keys cannot grow the cache. The key store's tables are created by the
migrator role (moe_core.pg.migrate); before that every API key is unknown (only the service key works).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

CACHE_MAX = 1000
LOOKUP = ("SELECT id, role, tenant_ids, revoked_at, expires_at, tenants FROM api_keys_resolved "
          "WHERE key_hash = $1")


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str, api_key: str = "") -> str:
    """The token of an `Authorization: Bearer <key>` header, else the `x-api-key` header's value."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return api_key.strip()


@dataclass(frozen=True)
class Caller:
    id: str
    role: str  # admin | user | service
    tenant_ids: tuple[str, ...]


class AuthUnavailable(Exception):
    """The key store cannot be asked (Postgres down): the caller should answer 503, not 401."""


class KeyVerifier:
    def __init__(self, dsn: str, service_key: str = "", cache_ttl_s: float = 1.0) -> None:
        self.dsn = dsn
        self.service_key = service_key
        self.cache_ttl_s = cache_ttl_s
        self._pool: asyncpg.Pool | None = None
        self._cache: OrderedDict[str, tuple[float, Caller]] = OrderedDict()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def verify(self, token: str) -> Caller | None:
        """The caller a token belongs to; None for no, an unknown, a revoked or an expired key."""
        if not token:
            return None
        if self.service_key and hmac.compare_digest(token.encode(), self.service_key.encode()):
            return Caller("service", "service", ())
        digest = hash_key(token)
        cached = self._cache.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        caller = await self._lookup(digest)
        if caller is not None:
            self._cache[digest] = (time.monotonic() + self.cache_ttl_s, caller)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        return caller

    async def _lookup(self, digest: str) -> Caller | None:
        try:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=3, timeout=5,
                                                       command_timeout=5)
            row = await self._pool.fetchrow(LOOKUP, digest)
        except asyncpg.UndefinedTableError:
            return None  # the gateway has not created the key store yet: no API key exists
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise AuthUnavailable(f"the key store is unavailable: {exc}") from exc
        if row is None or row["revoked_at"] is not None:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            return None
        tenants = json.loads(row["tenants"]) if isinstance(row["tenants"], str) else row["tenants"]
        tenant_ids = tuple(row["tenant_ids"])
        if (tenants or {}).get(tenant_ids[0], {}).get("disabled"):
            return None
        return Caller(row["id"], row["role"], tenant_ids)
