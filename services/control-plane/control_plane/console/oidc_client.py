"""The console's OpenID Connect client: provider discovery (<issuer>/.well-known/openid-configuration), the
authorization request (authorization code + PKCE S256, state and nonce; authlib), the code exchange at the
token endpoint (authlib's client, client secret + code verifier) and the ID token check against the
provider's published keys (oidc_tokens). Discovery and keys are cached; an unknown key id fetches the keys
again once (the provider rotated them)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.integrations.httpx_client._compat import httpx2  # the HTTP client authlib uses

from control_plane.console.oidc_settings import OidcSettings
from control_plane.console.oidc_tokens import ALGORITHMS, Expected, Refused, UnknownKey, check_claims, verify_signature

CACHE_S = 3600.0


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Pending:
    """What a sign-in keeps between the redirect to the provider and the callback (server-side)."""

    state: str
    nonce: str
    verifier: str


class OidcClient:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._provider: tuple[float, Provider] | None = None
        self._keys: tuple[float, dict[str, Any]] | None = None

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.settings.http_timeout_s) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Refused(f"the identity provider's {what} cannot be read ({url}: {type(exc).__name__})", 502) from None
        if not isinstance(body, dict):
            raise Refused(f"the identity provider's {what} is not a JSON object", 502)
        return body

    async def provider(self) -> Provider:
        if self._provider is not None and self._provider[0] > time.monotonic():
            return self._provider[1]
        issuer = self.settings.issuer.rstrip("/")
        doc = await self._get_json(f"{issuer}/.well-known/openid-configuration", "discovery document")
        if doc.get("issuer") != self.settings.issuer:  # OpenID Connect Discovery 1.0, 4.3
            raise Refused(f"wrong issuer: the provider's discovery document names {doc.get('issuer')!r}, not the "
                          f"configured issuer {self.settings.issuer!r}", 502)
        try:
            found = Provider(doc["issuer"], doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"],
                             tuple(a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"])
                                   if a in ALGORITHMS))
        except KeyError as exc:
            raise Refused(f"the provider's discovery document has no {exc.args[0]}", 502) from None
        self._provider = (time.monotonic() + CACHE_S, found)
        return found

    async def keys(self, fresh: bool = False) -> dict[str, Any]:
        if not fresh and self._keys is not None and self._keys[0] > time.monotonic():
            return self._keys[1]
        found = await self._get_json((await self.provider()).jwks_uri, "key set (JWKS)")
        self._keys = (time.monotonic() + CACHE_S, found)
        return found

    def _client(self) -> AsyncOAuth2Client:
        s = self.settings
        return AsyncOAuth2Client(s.client_id, s.client_secret.get_secret_value() or None, scope=s.scopes,
                                 redirect_uri=s.redirect_uri, code_challenge_method="S256",
                                 token_endpoint_auth_method="client_secret_basic" if s.client_secret.get_secret_value()
                                 else "none", timeout=s.http_timeout_s)

    async def start(self) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what the callback must find again."""
        provider = await self.provider()
        pending = Pending(generate_token(32), generate_token(32), generate_token(64))
        async with self._client() as client:
            url, _ = client.create_authorization_url(provider.authorization_endpoint, state=pending.state,
                                                     code_verifier=pending.verifier, nonce=pending.nonce)
        return str(url), pending

    async def finish(self, code: str, pending: Pending) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the ID token's verified claims."""
        provider = await self.provider()
        try:
            async with self._client() as client:
                token = await client.fetch_token(provider.token_endpoint, grant_type="authorization_code", code=code,
                                                 code_verifier=pending.verifier)
        except OAuthError as exc:
            raise Refused(f"the identity provider refused the code exchange: {exc.error}"
                          f"{': ' + exc.description if exc.description else ''}") from None
        except httpx2.HTTPError as exc:
            raise Refused(f"the identity provider's token endpoint cannot be reached ({type(exc).__name__})",
                          502) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Refused("the identity provider returned no ID token (is the openid scope allowed?)")
        algorithms = provider.algorithms or ("RS256",)
        try:
            claims = verify_signature(id_token, await self.keys(), algorithms)
        except UnknownKey:
            claims = verify_signature(id_token, await self.keys(fresh=True), algorithms)
        s = self.settings
        return check_claims(claims, Expected(s.issuer, s.expected_audience(), s.client_id, pending.nonce,
                                             s.leeway_s))
