"""Validating an OpenID Connect ID token (OpenID Connect Core 1.0, 3.1.3.7): the signature against the
provider's published keys (JWKS, joserfc), then the issuer, the audience (and azp when there are several),
the expiry and issue time (with a small leeway), and the nonce this sign-in sent. Every refusal says which
check failed: the console shows it on its error page."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

# Asymmetric algorithms only: an HMAC-signed ID token would be signed with the client secret, and "none" is
# never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class Refused(Exception):
    """A sign-in the console refuses; `reason` is shown to the person (never a secret)."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class UnknownKey(Refused):
    """The token names a key the cached key set does not hold (the provider may have rotated its keys)."""


@dataclass(frozen=True)
class Expected:
    issuer: str
    audience: str  # the audience the token must carry (the client id unless configured otherwise)
    client_id: str
    nonce: str
    leeway_s: int = 60


def _kid(token: str) -> str | None:
    """The key id in a compact JWS's protected header (read before verifying, only to pick the key)."""
    try:
        encoded = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, IndexError) as exc:
        raise Refused(f"the ID token is not a signed JWT ({type(exc).__name__})") from None
    if not isinstance(header, dict) or token.count(".") != 2:
        raise Refused("the ID token is not a compact signed JWT")
    kid = header.get("kid")
    return str(kid) if kid is not None else None


def verify_signature(token: str, keys: Mapping[str, Any], algorithms: Collection[str] = ALGORITHMS) -> dict[str, Any]:
    """The claims of a token signed by one of `keys` (a JWKS document); Refused otherwise."""
    allowed = [a for a in algorithms if a in ALGORITHMS]
    try:
        key_set = KeySet.import_key_set(dict(keys))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise Refused(f"the provider's key set cannot be read ({type(exc).__name__})", 502) from None
    kid = _kid(token)
    if kid is not None and all(k.kid != kid for k in key_set.keys):
        raise UnknownKey(f"the ID token is signed with a key the provider does not publish (kid {kid!r})")
    try:
        return dict(jwt.decode(token, key_set, algorithms=allowed).claims)
    except BadSignatureError:
        raise Refused("the ID token's signature does not verify against the provider's keys") from None
    except JoseError as exc:
        raise Refused(f"the ID token cannot be verified: {exc.description or type(exc).__name__}") from None


def check_claims(claims: Mapping[str, Any], expected: Expected, now: float | None = None) -> dict[str, Any]:
    """The claims if they are the ones this sign-in expects; Refused naming the first check that fails."""
    now = time.time() if now is None else now
    if claims.get("iss") != expected.issuer:
        raise Refused(f"wrong issuer: the ID token was issued by {claims.get('iss')!r}, not by the configured "
                      f"issuer {expected.issuer!r}")
    audiences = claims.get("aud")
    listed = [audiences] if isinstance(audiences, str) else list(audiences or [])
    if expected.audience not in listed:
        raise Refused(f"wrong audience: the ID token is for {listed!r}, not for {expected.audience!r}")
    if len(listed) > 1 and claims.get("azp") != expected.client_id:
        raise Refused(f"wrong authorized party: the ID token has several audiences and azp {claims.get('azp')!r} "
                      f"is not the client {expected.client_id!r}")
    for name in ("exp", "iat", "sub"):
        if name not in claims:
            raise Refused(f"the ID token has no {name!r} claim")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise Refused("the ID token's exp and iat must be numbers")
    if exp + expected.leeway_s < now:
        raise Refused("the ID token has expired")
    if iat - expected.leeway_s > now:
        raise Refused("the ID token was issued in the future (check the clocks)")
    if claims.get("nonce") != expected.nonce:
        raise Refused("wrong nonce: the ID token does not belong to this sign-in (replayed or tampered)")
    return dict(claims)
