"""API keys for tests, created in the gateway's key store (Postgres) as an operator would."""

from __future__ import annotations

import asyncio

from moe_core.access.keystore import KeyStore, Role


async def create_keys(dsn: str, *keys: tuple[str, Role, list[str]]) -> list[str]:
    """The secrets of new keys, one per (name, role, tenants), in order."""
    store = await KeyStore.connect(dsn)
    try:
        return [(await store.create(name, role, tenants))[1] for name, role, tenants in keys]
    finally:
        await store.close()


async def create_key(dsn: str, name: str, role: Role, tenants: list[str]) -> str:
    """The secret of a new key."""
    return (await create_keys(dsn, (name, role, tenants)))[0]


def new_keys(dsn: str, *keys: tuple[str, Role, list[str]]) -> list[str]:
    """create_keys, outside an event loop (a synchronous fixture)."""
    return asyncio.run(create_keys(dsn, *keys))


def new_key(dsn: str, name: str, role: Role, tenants: list[str]) -> str:
    """create_key, outside an event loop (a synchronous fixture)."""
    return new_keys(dsn, (name, role, tenants))[0]


async def person_key(store: KeyStore, name: str, role: Role, tenants: list[str]) -> tuple[str, str]:
    """(principal id, secret) of a new person with one key, made as the operator's key CLI makes a person's key
    (the admin API makes a person's keys only for that person: policy/opa/admin.rego). Four-eyes approvals are
    people's (policy/opa/knowledge.rego, quarantine.rego)."""
    from moe_core.access.principals import Principals

    person = await Principals(store.pool).create("person", tenants[0], name)
    return person.id, (await store.create(name, role, tenants, principal_id=person.id))[1]


def new_person_keys(dsn: str, *keys: tuple[str, Role, list[str]]) -> list[str]:
    """The secrets of keys of new persons, one person per (name, role, tenants), outside an event loop."""
    async def made() -> list[str]:
        store = await KeyStore.connect(dsn)
        try:
            return [(await person_key(store, name, role, tenants))[1] for name, role, tenants in keys]
        finally:
            await store.close()

    return asyncio.run(made())
