"""A disabled principal's keys, on the real Postgres: every key check refuses them — the request path's
(moe_core.access.keystore, read by the gateway and the control plane) and the tools' (moe_core.access.auth.KeyVerifier,
mcp) — through the key_principals view, and accepts them again once the principal is enabled."""

from __future__ import annotations

import uuid

import pytest

from moe_core.access.auth import KeyVerifier, accepted
from moe_core.access.keystore import KeyStore
from moe_core.access.principals import Principals

pytestmark = pytest.mark.infra


async def test_every_key_check_refuses_a_disabled_principals_keys_and_accepts_them_again(
        infra: dict[str, str]) -> None:
    store = await KeyStore.connect(infra["postgres"], cache_ttl_s=0)
    tools = KeyVerifier(infra["postgres"], cache_ttl_s=0)
    try:
        tenant = f"pd-{uuid.uuid4().hex[:8]}"
        person = await Principals(store.pool).create("person", tenant, "Pat", email=f"pat-{tenant}@example.org")
        key, token = await store.create("pat's key", "user", [tenant], principal_id=person.id)
        _, other_token = await store.create("someone else's", "user", [tenant])
        assert key.principal_disabled_at is None and await tools.verify(token) is not None

        disabled = await Principals(store.pool).set_disabled(person.id, True)
        assert disabled is not None and disabled.disabled_at is not None
        seen = await store.verify(token)
        assert seen is not None and seen.principal_disabled_at == disabled.disabled_at and not accepted(seen)
        assert await tools.verify(token) is None
        again = await Principals(store.pool).set_disabled(person.id, True)  # disabled once: the first time kept
        assert again is not None and again.disabled_at == disabled.disabled_at
        assert await tools.verify(other_token) is not None  # another principal's key is untouched

        await Principals(store.pool).set_disabled(person.id, False)
        back = await store.verify(token)
        assert back is not None and back.principal_disabled_at is None and accepted(back)
        assert await tools.verify(token) is not None
        assert await Principals(store.pool).set_disabled("p-nobody", True) is None
    finally:
        await tools.close()
        await store.close()
