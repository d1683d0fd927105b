"""The edge's key check is answered from the replica's cache (no store, no Redis round trip), and the cache is
bounded: a key revoked, a principal or a tenant disabled behind the edge's back (no announcement on the key
change channel, moe_core.access.key_events) is refused once MOE_KEY_CACHE_TTL_S has passed — here set to 1 s —
on the real Postgres, through the key check every API runs (moe_core.access.request_auth)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from starlette.requests import Request

from gateway.settings import GatewaySettings
from moe_core.access.keystore import KeyStore
from moe_core.access.principals import Principals
from moe_core.access.request_auth import authenticate
from moe_core.runtime.openai_error import OpenAIError

pytestmark = pytest.mark.infra


@pytest.fixture
async def store(infra: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KeyStore]:
    monkeypatch.setenv("MOE_KEY_CACHE_TTL_S", "1")
    settings = GatewaySettings()
    assert settings.key_cache_ttl_s == 1.0  # the documented setting the bound comes from
    keys = await KeyStore.connect(infra["postgres-control-plane"], settings.key_cache_ttl_s,
                                  settings.key_negative_ttl_s)
    try:
        yield keys
    finally:
        await keys.close()


def _request(token: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
                    "headers": [(b"authorization", f"Bearer {token}".encode())], "client": ("127.0.0.1", 1),
                    "app": FastAPI()})


async def _refused_after_the_bound(store: KeyStore, token: str, change: Callable[[], Awaitable[object]],
                                   code: str) -> None:
    assert (await authenticate(_request(token), store)).id  # verified, and now cached
    await change()  # behind the edge's back: nothing clears its cache
    assert store.cached(token) is not None  # still the cached key: no lookup per request
    await asyncio.sleep(store.cache_ttl_s)  # the documented bound
    with pytest.raises(OpenAIError) as refused:
        await authenticate(_request(token), store)
    assert refused.value.body()["error"]["code"] == code


async def test_a_revoked_key_is_refused_within_the_cache_bound(store: KeyStore) -> None:
    key, token = await store.create("bound", "user", [f"t-{uuid.uuid4().hex[:8]}"])
    await _refused_after_the_bound(store, token, lambda: store.pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1", key.id), "key_revoked")


async def test_a_disabled_principal_is_refused_within_the_cache_bound(store: KeyStore) -> None:
    key, token = await store.create("bound", "user", [f"t-{uuid.uuid4().hex[:8]}"])
    await _refused_after_the_bound(store, token, lambda: Principals(store.pool).set_disabled(key.principal_id, True),
                                   "principal_disabled")


async def test_a_disabled_tenant_is_refused_within_the_cache_bound(store: KeyStore) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    _, token = await store.create("bound", "user", [tenant])
    await _refused_after_the_bound(store, token, lambda: store.pool.execute(
        "UPDATE tenants SET disabled = true WHERE id = $1", tenant), "tenant_disabled")
