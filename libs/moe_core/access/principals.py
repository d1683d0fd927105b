"""Principals: who acts. A person (signs in to the console with OpenID Connect; known by the provider's issuer
and subject) or a service account (automation). Every API key belongs to exactly one principal, and so does
every console session (its short-lived key). Rules that count people — four-eyes approvals — count
principals, never keys: a principal's second key is the same principal.

A key row without a principal (made by a replica older than the `principals` migration) is its own service
account, `sa-<key id>`: the same id the migration gives every key that existed before it.

Only the control plane writes this table (moe_core.runtime.pg.tables); the edge never reads it (a key's principal id is
a column of api_keys).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

Kind = Literal["person", "service"]
KINDS: tuple[Kind, ...] = ("person", "service")

COLUMNS = "id, kind, tenant, display_name, email, oidc_issuer, oidc_subject, created_at, disabled_at"
INSERT = (
    "INSERT INTO principals (id, kind, tenant, display_name, email, oidc_issuer, oidc_subject) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "RETURNING id, kind, tenant, display_name, email, oidc_issuer, oidc_subject, created_at, disabled_at"
)
GET = ("SELECT id, kind, tenant, display_name, email, oidc_issuer, oidc_subject, created_at, disabled_at "
       "FROM principals WHERE id = $1")
LIST = ("SELECT id, kind, tenant, display_name, email, oidc_issuer, oidc_subject, created_at, disabled_at "
        "FROM principals WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id")
BY_SUBJECT = ("SELECT id, kind, tenant, display_name, email, oidc_issuer, oidc_subject, created_at, disabled_at "
              "FROM principals WHERE oidc_issuer = $1 AND oidc_subject = $2")
SET_DISABLED = (
    "UPDATE principals SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END "
    "WHERE id = $1 "
    "RETURNING id, kind, tenant, display_name, email, oidc_issuer, oidc_subject, created_at, disabled_at"
)
INSERT_SERVICE = ("INSERT INTO principals (id, kind, tenant, display_name) VALUES ($1, 'service', $2, $3) "
                  "ON CONFLICT DO NOTHING")


@dataclass(frozen=True)
class Principal:
    id: str
    kind: str
    tenant: str
    display_name: str
    email: str | None = None
    oidc_issuer: str | None = None
    oidc_subject: str | None = None
    created_at: datetime | None = None
    disabled_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How audit events name it."""
        return f"principal:{self.id}"


def own_principal(key_id: str) -> str:
    """The service account of a key that has no principal recorded (the migration's rule)."""
    return f"sa-{key_id}"


def new_id(kind: Kind) -> str:
    return ("p-" if kind == "person" else "sa-") + secrets.token_hex(8)


def _principal(row: Any) -> Principal:
    return Principal(row["id"], row["kind"], row["tenant"], row["display_name"], row["email"], row["oidc_issuer"],
                     row["oidc_subject"], row["created_at"], row["disabled_at"])


async def add_service_account(conn: asyncpg.Connection, principal_id: str, tenant: str, name: str) -> None:
    """A service account for a key created without one (inside the key's transaction)."""
    await conn.execute(INSERT_SERVICE, principal_id, tenant, name)


class PrincipalExists(ValueError):
    """An e-mail address or OIDC subject that another principal has already."""


class Principals:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, kind: Kind, tenant: str, display_name: str = "", *, email: str | None = None,
                     issuer: str | None = None, subject: str | None = None) -> Principal:
        if kind not in KINDS:
            raise ValueError(f"unknown principal kind {kind!r}")
        if kind == "service" and (email or subject):
            raise ValueError("a service account has no e-mail address or OIDC subject")
        if (issuer is None) != (subject is None):
            raise ValueError("an OIDC subject needs its issuer (and the other way round)")
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant)
                row = await conn.fetchrow(INSERT, new_id(kind), kind, tenant, display_name, email, issuer, subject)
        except asyncpg.UniqueViolationError as exc:
            raise PrincipalExists("a principal with this e-mail address or OIDC subject exists already") from exc
        return _principal(row)

    async def get(self, principal_id: str) -> Principal | None:
        row = await self.pool.fetchrow(GET, principal_id)
        return _principal(row) if row else None

    async def list(self, tenant: str | None = None) -> list[Principal]:
        return [_principal(r) for r in await self.pool.fetch(LIST, tenant)]

    async def by_subject(self, issuer: str, subject: str) -> Principal | None:
        row = await self.pool.fetchrow(BY_SUBJECT, issuer, subject)
        return _principal(row) if row else None

    async def set_disabled(self, principal_id: str, disabled: bool) -> Principal | None:
        """Disable (from now: every key and console session of the principal is refused) or enable it again;
        None if there is no such principal. Disabling a disabled principal keeps its first disabled_at."""
        row = await self.pool.fetchrow(SET_DISABLED, principal_id, disabled)
        return _principal(row) if row else None
