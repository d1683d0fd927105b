"""Identity comes from a verified key only: the Bearer token is looked up (hashed) in the key store."""

from __future__ import annotations

from fastapi import Request

from gateway.keystore import ApiKey, KeyStore
from gateway.openai_api import OpenAIError


async def authenticate(request: Request, store: KeyStore) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OpenAIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                          code="invalid_api_key")
    key = await store.verify(token.strip())
    if key is None:
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return key
