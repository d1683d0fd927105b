"""Identity comes from a verified key only: the key (`Authorization: Bearer <key>`, or `x-api-key: <key>`
as Anthropic clients send it) is looked up (hashed) in the key store."""

from __future__ import annotations

from fastapi import Request

from gateway.keystore import ApiKey, KeyStore
from gateway.openai_api import OpenAIError


def presented_key(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip()


async def authenticate(request: Request, store: KeyStore) -> ApiKey:
    token = presented_key(request)
    if not token:
        raise OpenAIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                               "or 'x-api-key: <key>'.", code="invalid_api_key")
    key = await store.verify(token)
    if key is None:
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return key


async def require_admin(request: Request, store: KeyStore) -> ApiKey:
    """A verified key with the admin role (writes to shared state need it)."""
    key = await authenticate(request, store)
    if key.role != "admin":
        raise OpenAIError(403, "This endpoint needs an admin key.", "permission_error", code="insufficient_role")
    return key
