"""Verifying a caller of a service without the request path's key check (mcp, codex-lineage): the fleet's API keys (the
Postgres key store, looked up by the key's SHA-256 hash with the same query and row decoding as
moe_core.access.keystore, read only) and an in-cluster service key (a setting, a Secret in Helm).

A key is accepted when it exists, is neither revoked nor expired, its principal and its default tenant are not
disabled
(`accepted`, the rule the edge's and the control plane's key check apply too).
Accepted keys are remembered for `cache_ttl_s` (short: a revocation takes effect within it); unknown keys
are never cached, so guessed keys cannot grow the cache. The key store's tables are created by the
migrator role (moe_core.runtime.pg.migrate); before that every API key is unknown (only the service key works).
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from moe_core.access.keystore import ApiKey, key_from_row
from moe_core.access.tokens import hash_key

__all__ = ["AuthUnavailable", "Caller", "KeyVerifier", "accepted", "bearer_token", "caller_of", "hash_key"]

CACHE_MAX = 1000


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


def accepted(key: ApiKey, now: datetime | None = None) -> bool:
    """The one rule every verifier applies: not revoked, not expired, its principal not disabled, its default
    tenant not disabled."""
    return (key.revoked_at is None and not key.expired(now) and key.principal_disabled_at is None
            and key.default_tenant not in key.disabled_tenants)


# The key check of a service that only verifies keys (mcp, codex-lineage): the resolved view alone, which is all
# its role may read (moe_core.runtime.pg.tables); a key's default template is the edge's business.
TOOL_KEY_ROW = ("SELECT r.*, NULL::text AS default_template, kp.principal_disabled_at FROM api_keys_resolved r "
                "LEFT JOIN key_principals kp ON kp.id = r.id WHERE r.key_hash = $1")


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
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise AuthUnavailable(f"the key store is unavailable: {exc}") from exc
        return await caller_of(self._pool, digest)


async def caller_of(pool: asyncpg.Pool, digest: str) -> Caller | None:
    """The caller a key's hash belongs to if the key is `accepted`, read through `pool` (a service with its own
    pool on its role: codex-lineage); AuthUnavailable when Postgres cannot be asked."""
    try:
        row = await pool.fetchrow(TOOL_KEY_ROW, digest)
    except asyncpg.UndefinedTableError:
        return None  # the key store has not been created yet: no API key exists
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise AuthUnavailable(f"the key store is unavailable: {exc}") from exc
    key = key_from_row(row) if row is not None else None
    if key is None or not accepted(key):
        return None
    return Caller(key.id, key.role, key.tenant_ids)
