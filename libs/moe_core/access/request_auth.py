"""Identity comes from a verified key only: the key (`Authorization: Bearer <key>`, or `x-api-key: <key>`
as Anthropic clients send it) is looked up (hashed) in the key store.

Refused: no key or an unknown key (401 invalid_api_key), a revoked key (401 key_revoked), an expired key
(401 key_expired), a key whose principal is disabled (401 principal_disabled), a key whose tenant is disabled
(403 tenant_disabled), and a key used for a tenant it does not belong to (`X-Moe-Tenant` header; 403
wrong_tenant). The errors are OpenAIErrors: each API
renders them in its own envelope. A key store that is down or does not answer in time is a 503
(auth_unavailable, with Retry-After) for keys not in the cache. Too many lookups that found no key from one
client address: 429 (rate_limit_exceeded, with Retry-After) before the lookup (moe_core.access.key_guard).

The verified key is also kept in a context variable for the rest of the request: the chat flow reads it to
enforce the key's allowed models, limits and budgets whatever API the request came through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import replace
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from moe_core.access.auth import AuthUnavailable, Caller, bearer_token, caller_of, hash_key
from moe_core.access.key_guard import KeyGuard
from moe_core.access.keystore import ADMIN_ROLES, ApiKey, KeyStore
from moe_core.runtime.openai_error import OpenAIError

TENANT_HEADER = "x-moe-tenant"
KEY_STORE_TIMEOUT_S = 5.0  # a key not in the cache, with Postgres down or hung: 503 (Retry-After), never a hang
current_key: ContextVar[ApiKey | None] = ContextVar("current_key", default=None)


def presented_key(request: Request) -> str:
    return bearer_token(request.headers.get("authorization", ""), request.headers.get("x-api-key", ""))


async def authenticate(request: Request, store: KeyStore) -> ApiKey:
    """The request's verified key; its `default_tenant` is the tenant the request acts for."""
    token = presented_key(request)
    if not token:
        raise OpenAIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                               "or 'x-api-key: <key>'.", code="invalid_api_key")
    key = await look_up(request, store, token)
    if key is None:
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
    if key.revoked_at is not None:
        raise OpenAIError(401, "This API key has been revoked.", code="key_revoked")
    if key.expired():
        raise OpenAIError(401, "This API key has expired.", code="key_expired")
    if key.principal_disabled_at is not None:
        raise OpenAIError(401, "The principal this API key belongs to is disabled.", code="principal_disabled")
    wanted = request.headers.get(TENANT_HEADER, "").strip()
    if wanted:
        if wanted not in key.tenant_ids:
            raise OpenAIError(403, f"This API key does not belong to tenant '{wanted}'.", "permission_error",
                              param=TENANT_HEADER, code="wrong_tenant")
        key = replace(key, tenant_ids=(wanted, *(t for t in key.tenant_ids if t != wanted)))
    if key.default_tenant in key.disabled_tenants:
        raise OpenAIError(403, f"Tenant '{key.default_tenant}' is disabled.", "permission_error",
                          code="tenant_disabled")
    current_key.set(key)
    return key


async def look_up(request: Request, store: KeyStore, token: str) -> ApiKey | None:
    """The token's key from the replica's cache, else from the key store, counted against the client's failed
    lookups (moe_core.access.key_guard: 429 past the limit, before the lookup; a lookup that finds a key, or cannot be
    made, is not a failure); 503 when the key store is down. Concurrent lookups of one token share the first one's
    (and its outcome): a burst of a new key's first requests is one lookup, not one failed-lookup slot each."""
    if (cached := store.cached(token)) is not None:
        return cached
    flight = (id(store), token)
    if (pending := _IN_FLIGHT.get(flight)) is not None:
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            if not pending.cancelled():
                raise  # this request was cancelled, not the lookup it waited for
            return await look_up(request, store, token)  # the first request went away mid-lookup: look up anew
    future: asyncio.Future[ApiKey | None] = asyncio.get_running_loop().create_future()
    _IN_FLIGHT[flight] = future
    try:
        key = await _look_up_counted(request, store, token)
    except Exception as exc:
        future.set_exception(exc)
        future.exception()  # retrieved here: nobody may be waiting
        raise
    except BaseException:
        future.cancel()
        raise
    else:
        future.set_result(key)
        return key
    finally:
        _IN_FLIGHT.pop(flight, None)


_IN_FLIGHT: dict[tuple[int, str], asyncio.Future[ApiKey | None]] = {}


async def _look_up_counted(request: Request, store: KeyStore, token: str) -> ApiKey | None:
    guard: KeyGuard | None = getattr(request.app.state, "key_guard", None)
    slot = await guard.take(request) if guard is not None else None
    try:
        key = await _verify_within(store, token, KEY_STORE_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # down or hung
        if guard is not None:
            await guard.give_back(slot)
        raise OpenAIError(503, "API keys cannot be checked right now (the key store is unavailable); try again "
                               "shortly.", "server_error", code="auth_unavailable") from exc
    if key is not None and guard is not None:
        await guard.give_back(slot)
    return key


async def _verify(store: KeyStore, token: str) -> ApiKey | None:
    try:
        return await store.verify(token)
    except asyncpg.ConnectionDoesNotExistError:  # a pooled connection of a Postgres that restarted
        return await store.verify(token)


async def _verify_within(store: KeyStore, token: str, timeout_s: float) -> ApiKey | None:
    """The lookup on a task of its own, abandoned (cancelled, not awaited) after `timeout_s`: cancelling a
    query of a hung Postgres in place waits for asyncpg to reset the connection, which hangs with it."""
    task = asyncio.ensure_future(_verify(store, token))
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        task.add_done_callback(_ignore_outcome)
        raise TimeoutError(f"the key store did not answer within {timeout_s} s")
    return task.result()


def _ignore_outcome(task: asyncio.Future[ApiKey | None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned lookup's error is not "never retrieved"


async def require_admin(request: Request, store: KeyStore) -> ApiKey:
    """A verified key with an admin role: a tenant admin (admin) or the fleet operator (operator). What each may
    do beyond that is the policy's decision (control_plane.policy.gate)."""
    key = await authenticate(request, store)
    if key.role not in ADMIN_ROLES:
        raise OpenAIError(403, "This endpoint needs an admin key.", "permission_error", code="insufficient_role")
    return key


def admin_of(store: Callable[[], KeyStore]) -> Callable[[Request], Awaitable[ApiKey]]:
    """FastAPI dependency of a router whose key store is `store()`: `require_admin`'s key, also kept on
    `request.state.admin` for the router's handlers."""
    async def admin(request: Request) -> ApiKey:
        request.state.admin = key = await require_admin(request, store())
        return key
    return admin


async def admin_caller(request: Request, pool: asyncpg.Pool) -> Caller:
    """The caller of an admin endpoint of a service that reads the key check's views on a pool of its own
    (codex-lineage), by the rule and in the words of `require_admin`: no key or an unknown one 401
    invalid_api_key, a key store that cannot be asked 503 auth_unavailable, a key without an admin role 403
    insufficient_role."""
    token = presented_key(request)
    if not token:
        raise OpenAIError(401, "Send an admin API key as 'Authorization: Bearer <key>'.", "invalid_request_error",
                          code="invalid_api_key")
    try:
        caller = await caller_of(pool, hash_key(token))
    except AuthUnavailable:
        raise OpenAIError(503, "API keys cannot be checked right now (the key store is unavailable); try again "
                               "shortly.", "server_error", code="auth_unavailable") from None
    if caller is None:
        raise OpenAIError(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
    if caller.role not in ADMIN_ROLES:
        raise OpenAIError(403, "This endpoint needs an admin key.", "permission_error", code="insufficient_role")
    return caller


async def verified_key(request: Request) -> ApiKey:
    """FastAPI dependency: the request's verified key, from the app's key store (`app.state.key_store`)."""
    return await authenticate(request, request.app.state.key_store)


async def admin_key(request: Request) -> ApiKey:
    """FastAPI dependency: a verified key with the admin role."""
    return await require_admin(request, request.app.state.key_store)


VerifiedKey = Annotated[ApiKey, Depends(verified_key)]
AdminKey = Annotated[ApiKey, Depends(admin_key)]
