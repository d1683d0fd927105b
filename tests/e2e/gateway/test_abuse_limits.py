"""The gateway against hostile volume (a real gateway process on the real Redis, Postgres, Kafka, Chroma and
Neo4j, with tight limits): a flood of made-up keys from one address is answered 429 after a few lookups
while valid keys keep working, and the endpoints whose cost no token budget sees (uploads, audit
verification, knowledge exports, stream resumes) are limited per key — 429 with Retry-After, in the API's
own envelope, another key unaffected.

Limits count per calendar minute: each test starts its calls early in a minute (waiting for the next one when
fewer than 20 s are left), so they all fall in one window."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fleetlib import api as fleetlib_api

from tests.support.fleet import ServiceProcess
from tests.support.keys import create_keys
from tests.support.lone_service import lone_control_plane, lone_gateway

pytestmark = pytest.mark.e2e
LIMIT = 2  # calls a minute of each limited endpoint, per key
FAILED_LOOKUPS = 4  # lookups finding no key a minute, per address
BURST = LIMIT + 2


@pytest.fixture(scope="module")
def tight(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    fleetlib_api.ensure_up(["chroma", "neo4j"])  # uploads, exports
    ends = fleetlib_api.endpoints()
    limits = {f"MOE_LIMIT_{name}_PER_MINUTE": str(LIMIT) for name in
              ("UPLOADS", "AUDIT_VERIFICATIONS", "EXPORTS", "STREAM_RESUMES")}
    with lone_gateway(infra, "tight", **limits, MOE_LIMIT_FAILED_KEY_LOOKUPS_PER_MINUTE=str(FAILED_LOOKUPS),
                      MOE_KEY_CACHE_TTL_S="600", MOE_CHROMA_URL=ends["chroma"], MOE_NEO4J_URL=ends["neo4j"],
                      MOE_NEO4J_USER=ends.get("neo4j-user", ""),
                      MOE_NEO4J_PASSWORD=ends.get("neo4j-password", "")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def tight_control_plane(tight: ServiceProcess) -> Iterator[ServiceProcess]:
    """The control plane beside `tight`, with its limits (uploads, audit verifications, exports)."""
    with lone_control_plane(tight) as control_plane:
        yield control_plane


async def _keys(infra: dict[str, str], count: int) -> list[str]:
    return await create_keys(infra["postgres"], *[("abuse", "user", [f"abuse-{uuid.uuid4().hex[:8]}"])] * count)


def _from(address: str, key: str) -> dict[str, str]:
    """A request as the reverse proxy in front of the gateway forwards it (uvicorn trusts 127.0.0.1)."""
    return {"Authorization": f"Bearer {key}", "X-Forwarded-For": address}


def _limited(response: httpx.Response, limit: str, anthropic: bool = False) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    body = response.json()
    if anthropic:
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    else:
        assert (body["error"]["type"], body["error"]["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert limit.replace("_", " ") in body["error"]["message"]


async def _fresh_minute() -> None:
    """Wait for the next minute if this one has fewer than 20 s left: the test's calls share one window."""
    left = 60 - time.time() % 60
    if left < 20:
        await asyncio.sleep(left + 0.5)


async def _burst(http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str],
                 **kwargs: Any) -> list[httpx.Response]:
    return [await http.request(method, path, headers=headers, **kwargs) for _ in range(BURST)]


async def test_a_flood_of_made_up_keys_is_throttled_per_address_while_valid_keys_work(
        tight: ServiceProcess, infra: dict[str, str]) -> None:
    flooder, neighbour = f"198.51.100.{secrets.randbelow(200) + 1}", f"2001:db8:{secrets.randbelow(9999)}::7"
    valid, other = await _keys(infra, 2)
    await _fresh_minute()
    async with httpx.AsyncClient(base_url=tight.url, timeout=30) as http:
        assert (await http.get("/v1/models", headers=_from(flooder, valid))).status_code == 200  # verified
        flood = [await http.get("/v1/models", headers=_from(flooder, f"moe-{secrets.token_urlsafe(24)}"))
                 for _ in range(FAILED_LOOKUPS + 3)]
        assert [r.status_code for r in flood] == [401] * FAILED_LOOKUPS + [429] * 3
        assert flood[0].json()["error"]["code"] == "invalid_api_key"
        _limited(flood[-1], "failed_key_lookups_per_minute")
        anthropic = await http.post("/v1/messages", headers={"x-api-key": "moe-made-up", "X-Forwarded-For": flooder},
                                    json={"model": "m", "max_tokens": 5, "messages": []})
        _limited(anthropic, "failed_key_lookups_per_minute", anthropic=True)
        # the key this address used before the flood still works; a new one waits for the minute to end
        assert (await http.get("/v1/models", headers=_from(flooder, valid))).status_code == 200
        _limited(await http.get("/v1/models", headers=_from(flooder, other)), "failed_key_lookups_per_minute")
        # another address (an IPv6 /64 of its own) is not affected, and its failures are its own
        assert (await http.get("/v1/models", headers=_from(neighbour, other))).status_code == 200
        wrong = await http.get("/v1/models", headers=_from(neighbour, "moe-made-up"))
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_api_key")


async def test_a_burst_of_a_new_keys_first_requests_is_one_lookup_not_a_flood(
        tight: ServiceProcess, infra: dict[str, str]) -> None:
    """Many streams opened at once with a key the replica has not cached yet (bench/streams.py): concurrent lookups
    of one token share one, so they take one failed-lookup slot, not one each (which turned into 429s)."""
    address = f"203.0.113.{secrets.randbelow(200) + 1}"  # an address of its own: its counter starts at zero
    [valid] = await _keys(infra, 1)
    async with httpx.AsyncClient(base_url=tight.url, timeout=30) as http:
        burst = await asyncio.gather(*(http.get("/v1/models", headers=_from(address, valid))
                                       for _ in range(FAILED_LOOKUPS * 5)))
        assert [r.status_code for r in burst] == [200] * (FAILED_LOOKUPS * 5), [r.text for r in burst][:3]
        # made-up keys from that address are still counted from zero: the burst used no slot
        flood = [await http.get("/v1/models", headers=_from(address, f"moe-{secrets.token_urlsafe(24)}"))
                 for _ in range(FAILED_LOOKUPS)]
        assert [r.status_code for r in flood] == [401] * FAILED_LOOKUPS


async def test_uploads_are_limited_per_key(tight_control_plane: ServiceProcess, infra: dict[str, str]) -> None:
    key, other, warm = await _keys(infra, 3)
    async with httpx.AsyncClient(base_url=tight_control_plane.url, timeout=120) as http:
        assert (await http.post("/v1/memory/documents", headers=_from("192.0.2.1", warm),  # the embedder loaded
                                json={"text": "# Warm-up"})).status_code == 201
        await _fresh_minute()
        responses = await _burst(http, "POST", "/v1/memory/documents", _from("192.0.2.1", key),
                                 json={"text": "# Shift rota\n\nNight shifts swap on Mondays."})
        assert [r.status_code for r in responses] == [201] * LIMIT + [429] * 2
        _limited(responses[-1], "uploads_per_minute")
        files = {"file": ("rota.pdf", b"%PDF-1.4 never read", "application/pdf")}  # refused before it is read
        _limited(await http.post("/v1/memory/documents", headers=_from("192.0.2.1", key), files=files),
                 "uploads_per_minute")
        assert (await http.post("/v1/memory/documents", headers=_from("192.0.2.1", other),
                                json={"text": "# Other tenant"})).status_code == 201
        for secret in (key, other, warm):
            listed = await http.get("/v1/memory/documents", headers=_from("192.0.2.1", secret))
            for doc in listed.json()["data"]:
                await http.delete(f"/v1/memory/documents/{doc['id']}", headers=_from("192.0.2.1", secret))


async def test_audit_verification_and_exports_are_limited_per_key(tight_control_plane: ServiceProcess,
                                                                   infra: dict[str, str]) -> None:
    key, other, warm = await _keys(infra, 3)
    unknown = f"chatcmpl-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=tight_control_plane.url, timeout=60) as http:
        # the control plane's first graph read (its Neo4j connection, the export's query plan) made before the
        # burst, by another key: on a loaded machine a cold first export can pass the 10-s query bound (a 503)
        for _ in range(3):
            if (await http.post("/v1/knowledge/export", headers=_from("192.0.2.3", warm), json={})).status_code == 200:
                break
    await _fresh_minute()
    async with httpx.AsyncClient(base_url=tight_control_plane.url, timeout=60) as http:
        verified = await _burst(http, "GET", f"/v1/audit/{unknown}", _from("192.0.2.2", key),
                                params={"verify": "true"})
        assert [r.status_code for r in verified] == [404] * LIMIT + [429] * 2
        _limited(verified[-1], "audit_verifications_per_minute")
        plain = await http.get(f"/v1/audit/{unknown}", headers=_from("192.0.2.2", key))  # no verification
        assert plain.status_code == 404
        assert (await http.get(f"/v1/audit/{unknown}", headers=_from("192.0.2.2", other),
                               params={"verify": "true"})).status_code == 404

        exports = await _burst(http, "POST", "/v1/knowledge/export", _from("192.0.2.2", key), json={})
        assert [r.status_code for r in exports] == [200] * LIMIT + [429] * 2
        assert exports[0].json()["entities"] == []  # a new tenant's graph: an empty bundle
        _limited(exports[-1], "exports_per_minute")
        assert (await http.post("/v1/knowledge/export", headers=_from("192.0.2.2", other), json={})).status_code == 200


async def test_stream_resumes_are_limited_per_key(tight: ServiceProcess, infra: dict[str, str]) -> None:
    key, other = await _keys(infra, 2)
    resume = {"Last-Event-ID": f"{uuid.uuid4().hex}.p1.0"}  # a well-formed id of a stream that does not exist
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    await _fresh_minute()
    async with httpx.AsyncClient(base_url=tight.url, timeout=30) as http:
        tries = await _burst(http, "POST", "/v1/chat/completions", {**_from("192.0.2.3", key), **resume}, json=body)
        assert [r.status_code for r in tries] == [404] * LIMIT + [429] * 2
        assert tries[0].json()["error"]["code"] == "stream_not_found"
        _limited(tries[-1], "stream_resumes_per_minute")
        anthropic = await http.post("/v1/messages", headers={**_from("192.0.2.3", key), **resume},
                                    json={"model": "claude-sonnet-4-5", "max_tokens": 5, "stream": True,
                                          "messages": [{"role": "user", "content": "hi"}]})
        _limited(anthropic, "stream_resumes_per_minute", anthropic=True)
        elsewhere = await http.post("/v1/responses", headers={**_from("192.0.2.3", other), **resume},
                                    json={"model": "moe-orchestrator", "input": "hi", "stream": True})
        assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "stream_not_found")
