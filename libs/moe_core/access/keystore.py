"""API keys and tenants in Postgres: only a SHA-256 hash of each key is stored; each key has tenants, a
role, an optional expiry, optional allowed models and limits and an optional default expert template, and
belongs to one principal (a person or a service account, moe_core.access.principals; a disabled principal's keys
are refused); each tenant has limits and can be disabled.

Verified keys are cached per process (`cache_ttl_s`); a change anywhere in the fleet is announced on a
Redis channel (moe_core.access.key_events) and clears every replica's cache. Unknown keys are cached only briefly
(`negative_ttl_s`) and the cache is bounded, so guessed keys cannot grow it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.access.limits import Limits
from moe_core.access.principals import add_service_account, own_principal
from moe_core.access.tokens import hash_key

Role = Literal["admin", "user", "operator"]  # admin: a tenant admin; operator: the fleet operator (docs/security.md)
ADMIN_ROLES = frozenset({"admin", "operator"})
CACHE_MAX = 10_000

# The default template is read beside the view (not in it): a replica of an older version re-creating the
# view in its migration must not meet a column it does not know.
KEY_ROWS = ("SELECT r.*, k.default_template, k.data_class, k.principal_id, kp.principal_disabled_at, "
            "kp.principal_kind "
            "FROM api_keys_resolved r "
            "JOIN api_keys k ON k.id = r.id LEFT JOIN key_principals kp ON kp.id = r.id")


class KeyCacheSettings(BaseSettings):
    """How long a replica keeps what its key check read (the edge's and the control plane's)."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    key_cache_ttl_s: float = Field(default=10.0, ge=0, description="How long a verified key is cached (changes "
                                                                   "clear every replica's cache at once)")
    key_negative_ttl_s: float = Field(default=1.0, ge=0, description="How long an unknown key is cached")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    tenant_ids: tuple[str, ...]
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    allowed_models: tuple[str, ...] | None = None  # None: every model
    limits: Limits = field(default_factory=Limits)
    tenant_limits: dict[str, Limits] = field(default_factory=dict, compare=False)
    disabled_tenants: frozenset[str] = frozenset()
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    default_template: str | None = None  # the expert template its requests use unless they name one
    data_class: str | None = None  # raises its requests' data class (moe_core.policy.classes.declared_class)
    principal_id: str = ""  # who holds it (moe_core.access.principals); four-eyes counts principals, not keys
    principal_disabled_at: datetime | None = None  # its principal is disabled: the key is refused
    principal_kind: str = "service"  # person | service: four-eyes approvals are people's (policy/opa)

    @property
    def default_tenant(self) -> str:
        return self.tenant_ids[0]

    @property
    def principal(self) -> str:
        """Who acts with it: its principal, or (none recorded) its own service account; one principal's keys are
        one actor to every policy."""
        return self.principal_id or own_principal(self.id)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def allows(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models

    def limits_of(self, tenant_id: str) -> Limits:
        return self.tenant_limits.get(tenant_id) or Limits()


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    limits: Limits
    disabled: bool
    created_at: datetime


def new_token(key_id: str) -> str:
    return f"moe-{key_id}-{secrets.token_urlsafe(32)}"


def _key(row: asyncpg.Record) -> ApiKey:
    tenants: dict[str, Any] = json.loads(row["tenants"])
    return ApiKey(
        row["id"], row["name"], row["role"], tuple(row["tenant_ids"]), expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        allowed_models=tuple(row["allowed_models"]) if row["allowed_models"] is not None else None,
        limits=Limits.model_validate_json(row["limits"]),
        tenant_limits={t: Limits.model_validate(v["limits"]) for t, v in tenants.items()},
        disabled_tenants=frozenset(t for t, v in tenants.items() if v["disabled"]),
        created_at=row["created_at"], rotated_at=row["rotated_at"], default_template=row["default_template"],
        principal_id=row.get("principal_id") or own_principal(row["id"]),
        principal_disabled_at=row.get("principal_disabled_at"),
        principal_kind=row.get("principal_kind") or "service", data_class=row.get("data_class"),
    )


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(row["id"], row["name"], Limits.model_validate_json(row["limits"]), row["disabled"],
                  row["created_at"])


class KeyStore:
    def __init__(self, pool: asyncpg.Pool, cache_ttl_s: float = 10.0, negative_ttl_s: float = 1.0) -> None:
        self.pool = pool
        self.cache_ttl_s = cache_ttl_s
        self.negative_ttl_s = min(negative_ttl_s, cache_ttl_s)
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._generation = 0  # bumped by invalidate(): a lookup that overlapped a change is not cached

    @classmethod
    async def connect(cls, dsn: str, cache_ttl_s: float = 10.0, negative_ttl_s: float = 1.0) -> KeyStore:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5)
        return cls(pool, cache_ttl_s, negative_ttl_s)  # the tables are the migrator's (moe_core.runtime.pg.migrate)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    def invalidate(self) -> None:
        """Forget every cached lookup (a key or tenant changed somewhere in the fleet)."""
        self._generation += 1
        self._cache.clear()

    # -- keys ------------------------------------------------------------------------------------------
    async def create(self, name: str, role: Role, tenant_ids: list[str], *, expires_at: datetime | None = None,
                     allowed_models: list[str] | None = None, limits: Limits | None = None,
                     default_template: str | None = None, principal_id: str | None = None,
                     data_class: str | None = None) -> tuple[ApiKey, str]:
        """Create a key (its tenants are created if missing); the token is returned once, never stored. It
        belongs to `principal_id` (an existing principal), else to a new service account of its own."""
        if role not in get_args(Role):
            raise ValueError(f"unknown role {role!r}")
        if not tenant_ids or any(not t.strip() for t in tenant_ids):
            raise ValueError("a key needs at least one non-empty tenant id")
        key_id = secrets.token_hex(6)
        token = new_token(key_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO tenants (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", tenant_ids)
            if principal_id is None:
                principal_id = own_principal(key_id)
                await add_service_account(conn, principal_id, tenant_ids[0], name)
            await conn.execute(
                "INSERT INTO api_keys (id, name, key_hash, role, tenant_ids, expires_at, allowed_models, limits, "
                "default_template, principal_id, data_class) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                key_id, name, hash_key(token), role, tenant_ids, expires_at, allowed_models,
                (limits or Limits()).model_dump_json(exclude_none=True), default_template, principal_id, data_class,
            )
        key = await self.get(key_id)
        assert key is not None
        return key, token

    async def get(self, key_id: str) -> ApiKey | None:
        row = await self.pool.fetchrow(KEY_ROWS + " WHERE r.id = $1", key_id)
        return _key(row) if row else None

    async def keys(self, tenant_id: str | None = None, principal_id: str | None = None) -> list[ApiKey]:
        rows = await self.pool.fetch(
            KEY_ROWS + " WHERE ($1::text IS NULL OR $1 = ANY(r.tenant_ids)) AND ($2::text IS NULL OR "
            "k.principal_id = $2) ORDER BY r.created_at, r.id", tenant_id, principal_id)
        return [_key(r) for r in rows]

    async def update(self, key_id: str, *, name: str | None = None, expires_at: datetime | None = None,
                     clear_expiry: bool = False, allowed_models: list[str] | None = None,
                     clear_models: bool = False, limits: Limits | None = None, default_template: str | None = None,
                     clear_template: bool = False, data_class: str | None = None,
                     clear_class: bool = False) -> ApiKey | None:
        """Change a live (not revoked) key's settings; None where nothing is to change."""
        status = await self.pool.execute(
            "UPDATE api_keys SET name = coalesce($2, name), "
            "expires_at = CASE WHEN $4 THEN NULL ELSE coalesce($3, expires_at) END, "
            "allowed_models = CASE WHEN $6 THEN NULL ELSE coalesce($5, allowed_models) END, "
            "limits = coalesce($7::jsonb, limits), "
            "default_template = CASE WHEN $9 THEN NULL ELSE coalesce($8, default_template) END, "
            "data_class = CASE WHEN $11 THEN NULL ELSE coalesce($10, data_class) END "
            "WHERE id = $1 AND revoked_at IS NULL",
            key_id, name, expires_at, clear_expiry, allowed_models, clear_models,
            limits.model_dump_json(exclude_none=True) if limits is not None else None, default_template,
            clear_template, data_class, clear_class,
        )
        self.invalidate()
        return await self.get(key_id) if status.endswith(" 1") else None

    async def rotate(self, key_id: str) -> tuple[ApiKey, str] | None:
        """A new secret for a live key (same id and settings); the old secret stops working at once."""
        token = new_token(key_id)
        status = await self.pool.execute(
            "UPDATE api_keys SET key_hash = $2, rotated_at = now() WHERE id = $1 AND revoked_at IS NULL",
            key_id, hash_key(token))
        self.invalidate()
        key = await self.get(key_id) if status.endswith(" 1") else None
        return (key, token) if key is not None else None

    async def revoke(self, key_id: str) -> bool:
        status = await self.pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
        )
        self.invalidate()
        return status.endswith(" 1")

    def cached(self, token: str) -> ApiKey | None:
        """The key a token belongs to if this replica verified it lately (no lookup); else None."""
        cached = self._cache.get(hash_key(token))
        return cached[1] if cached and cached[0] > time.monotonic() else None

    async def verify(self, token: str) -> ApiKey | None:
        """The key a token belongs to, revoked or expired ones included (the caller tells them apart)."""
        digest = hash_key(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        generation = self._generation
        row = await self.pool.fetchrow(KEY_ROWS + " WHERE r.key_hash = $1", digest)
        key = _key(row) if row else None
        if generation != self._generation:
            return key
        self._cache[digest] = (now + (self.cache_ttl_s if key else self.negative_ttl_s), key)
        self._cache.move_to_end(digest)
        while len(self._cache) > CACHE_MAX:
            self._cache.popitem(last=False)
        return key

    # -- tenants ---------------------------------------------------------------------------------------
    async def create_tenant(self, tenant_id: str, name: str, limits: Limits) -> Tenant | None:
        """None if the tenant exists already."""
        row = await self.pool.fetchrow(
            "INSERT INTO tenants (id, name, limits) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
            "RETURNING id, name, limits, disabled, created_at",
            tenant_id, name, limits.model_dump_json(exclude_none=True))
        return _tenant(row) if row else None

    async def tenant(self, tenant_id: str) -> Tenant | None:
        row = await self.pool.fetchrow("SELECT id, name, limits, disabled, created_at FROM tenants WHERE id = $1",
                                       tenant_id)
        return _tenant(row) if row else None

    async def tenants(self) -> list[Tenant]:
        rows = await self.pool.fetch("SELECT id, name, limits, disabled, created_at FROM tenants ORDER BY id")
        return [_tenant(r) for r in rows]

    async def update_tenant(self, tenant_id: str, *, name: str | None = None, limits: Limits | None = None,
                            disabled: bool | None = None) -> Tenant | None:
        row = await self.pool.fetchrow(
            "UPDATE tenants SET name = coalesce($2, name), limits = coalesce($3::jsonb, limits), "
            "disabled = coalesce($4, disabled) WHERE id = $1 RETURNING id, name, limits, disabled, created_at",
            tenant_id, name, limits.model_dump_json(exclude_none=True) if limits is not None else None, disabled)
        self.invalidate()
        return _tenant(row) if row else None


key_from_row = _key  # one decoding of a key row for every verifier (moe_core.access.auth)
