"""A store the console needs is down (here: Redis, its session store): a clear 503 page, never a 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from control_plane.console.core import ConsoleCore
from moe_core.access.keystore import KeyStore
from tests.support.fleet import free_port

pytestmark = pytest.mark.infra


@pytest.fixture
async def console(infra: dict[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    store = await KeyStore.connect(infra["postgres"], cache_ttl_s=0)
    admin = (await store.create("console-outage", "admin", ["console-outage"]))[1]
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True, socket_connect_timeout=1)
    app = FastAPI()
    app.include_router(ConsoleCore(dead, "outage", lambda: store, app).router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
        yield client, admin
    await dead.aclose()
    await store.close()


async def test_pages_and_sign_in_say_503_when_the_session_store_is_down(
        console: tuple[httpx.AsyncClient, str]) -> None:
    client, admin = console
    client.cookies.set("moe_console", "sid.00ff")
    page = await client.get("/console")
    assert page.status_code == 503
    assert "unavailable" in page.text
    form = await client.get("/console/login")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce is not None
    client.cookies.set("moe_console_login", nonce.group(1))
    signed = await client.post("/console/login", data={"csrf_token": nonce.group(1), "api_key": admin})
    assert signed.status_code == 503
    assert "unavailable" in signed.text
    assert "moe_console=" not in signed.headers.get("set-cookie", "").replace("moe_console_login", "")
