"""The `principals` migration on a store made before it (a throwaway schema on the real Postgres): every
existing key becomes its own service account (`sa-<key id>`), existing change sets and approvals learn their
principals, and the keys keep working through the key store — nothing breaks on upgrade."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from moe_core.access.auth import hash_key
from moe_core.access.keystore import KeyStore
from moe_core.runtime.pg.ddl import MIGRATIONS

pytestmark = pytest.mark.infra


@pytest.fixture
async def old_store(infra: dict[str, str]) -> AsyncIterator[str]:
    """A DSN whose search path is a new schema holding the fleet store as it was before principals (every
    earlier migration applied there)."""
    schema = f"moe_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infra["postgres"])
    await admin.execute(f'CREATE SCHEMA "{schema}"')  # a generated identifier, not input
    parts = urlsplit(infra["postgres"])
    query = "&".join(q for q in (parts.query, f"search_path={schema}") if q)
    dsn = urlunsplit(parts._replace(query=query))
    try:
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT current_schema()") == schema
            for migration in MIGRATIONS:
                if migration.name == "principals":  # the store as it was: what came before, nothing after
                    break
                await conn.execute(migration.sql)
        finally:
            await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def test_existing_keys_become_their_own_service_accounts(old_store: str) -> None:
    conn = await asyncpg.connect(old_store)
    try:
        for key_id, tenants in (("k-old-1", ["t1"]), ("k-old-2", ["t2", "t1"])):
            await conn.execute("INSERT INTO api_keys (id, name, key_hash, role, tenant_ids) VALUES ($1, $2, $3, "
                               "'admin', $4)", key_id, f"old {key_id}", hash_key(f"secret-{key_id}"), tenants)
        await conn.execute("INSERT INTO knowledge_change_sets (id, tenant, status, importer_key, bundle_digest, "
                           "bundle, diff, domains, approvals_required, policy_digest) VALUES ('kcs-old', 't1', "
                           "'pending', 'k-old-1', 'd', '{}', '{}', '{medical}', 2, 'p')")
        await conn.execute("INSERT INTO knowledge_approvals (change_set_id, key_id) VALUES ('kcs-old', 'k-old-2')")

        (principals,) = [m for m in MIGRATIONS if m.name == "principals"]
        await conn.execute(principals.sql)
        await conn.execute(principals.sql)  # idempotent, like every migration
        for later in MIGRATIONS[MIGRATIONS.index(principals) + 1:]:  # and what came after it (key_principals)
            await conn.execute(later.sql)

        rows = await conn.fetch("SELECT p.id, p.kind, p.tenant, p.display_name FROM principals p ORDER BY p.id")
        assert [tuple(r) for r in rows] == [("sa-k-old-1", "service", "t1", "old k-old-1"),
                                            ("sa-k-old-2", "service", "t2", "old k-old-2")]
        assert await conn.fetchval("SELECT importer_principal FROM knowledge_change_sets") == "sa-k-old-1"
        assert await conn.fetchval("SELECT principal_id FROM knowledge_approvals") == "sa-k-old-2"
        with pytest.raises(asyncpg.UniqueViolationError):  # one approval per principal from now on
            await conn.execute("INSERT INTO knowledge_approvals (change_set_id, key_id, principal_id) "
                               "VALUES ('kcs-old', 'k-new', 'sa-k-old-2')")
    finally:
        await conn.close()

    store = await KeyStore.connect(old_store, cache_ttl_s=0)
    try:
        key = await store.verify("secret-k-old-2")
        assert key is not None and (key.id, key.principal_id, key.role) == ("k-old-2", "sa-k-old-2", "admin")
        made, _ = await store.create("new key", "user", ["t1"])  # no principal given: a service account of its own
        assert made.principal_id == f"sa-{made.id}"
        assert len(await store.keys(principal_id="sa-k-old-1")) == 1
    finally:
        await store.close()
