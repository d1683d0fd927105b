"""The grants of one store, generated from the declaration (moe_core.runtime.pg.tables): every declared service's role
first loses every privilege on each table of the store, then gets exactly the declared ones. Statements are
format() templates with their identifiers, quoted by the server (%I); privileges come from a fixed list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moe_core.runtime.pg.tables import PRIVILEGES, PgTable, Privilege, Store, role_of, services, tables

Statement = tuple[str, tuple[str, ...]]  # (format template, identifiers)


def _privileges(privileges: frozenset[Privilege]) -> str:
    return ", ".join(p for p in PRIVILEGES if p in privileges)


def grants(store: Store, schema: str, roles: Mapping[str, str] | None = None,
           extra: Mapping[str, frozenset[Privilege]] | None = None) -> list[Statement]:
    """The statements that give each role of `roles` (service -> role; default: every declared service's own
    role) exactly its declared privileges on the tables of `store` in `schema`. `extra`: further roles (an
    operator's) that get those privileges on every table of the store."""
    roles = roles if roles is not None else {s: role_of(s) for s in services()}
    in_store = tables(store)
    users = {roles[s] for t in in_store for s in t.access if s in roles} | set(extra or {})
    out: list[Statement] = []
    for role in sorted(users):
        out.append(("GRANT USAGE ON SCHEMA %I TO %I", (schema, role)))
        if store == "audit":
            out.append(("REVOKE CREATE ON SCHEMA %I FROM %I", (schema, role)))
    for t in in_store:
        out += _table(t, schema, roles, extra or {})
    return out


def _table(t: PgTable, schema: str, roles: Mapping[str, str],
           extra: Mapping[str, frozenset[Privilege]]) -> list[Statement]:
    wanted: dict[str, frozenset[Privilege]] = {role: frozenset() for role in roles.values()}
    for service, privileges in t.access.items():
        if service in roles:
            wanted[roles[service]] = wanted[roles[service]] | privileges
    for role, privileges in extra.items():
        wanted[role] = wanted.get(role, frozenset()) | privileges
    out: list[Statement] = []
    for role, privileges in sorted(wanted.items()):
        out.append(("REVOKE ALL ON %I.%I FROM %I", (schema, t.name, role)))
        if privileges:
            out.append((f"GRANT {_privileges(privileges)} ON %I.%I TO %I", (schema, t.name, role)))
    return out


async def apply(conn: Any, statements: list[Statement]) -> None:
    """Run them on an asyncpg connection (the tables' owner): each is formatted by the server first."""
    for template, identifiers in statements:
        args = ", ".join(f"${i + 2}::text" for i in range(len(identifiers)))
        sql = await conn.fetchval(f"SELECT format($1::text, {args})", template, *identifiers)
        await conn.execute(sql)


async def existing(conn: Any, roles: Mapping[str, str], own: bool = False) -> tuple[dict[str, str], list[str]]:
    """The roles that exist (service -> role) and the names of those that do not. The connected role (the
    tables' owner, in a single-role set-up) is left out unless `own`: it keeps its owner's rights."""
    names = list(roles.values())
    found = {r["rolname"] for r in await conn.fetch(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[]) AND ($2 OR rolname <> current_user)",
        names, own)}
    return {s: r for s, r in roles.items() if r in found}, sorted(set(names) - found)
