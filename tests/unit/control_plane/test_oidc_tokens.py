"""The console's ID token checks (control_plane.console.oidc_tokens) on tokens signed here with keys made here:
each broken property is refused with its own reason; a good token passes. The real provider's tokens are
checked in tests/console/control_plane/test_oidc_sign_in.py."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from control_plane.console.oidc_tokens import Expected, Refused, UnknownKey, check_claims, verify_signature

pytestmark = pytest.mark.unit

NOW = 1_800_000_000
ISSUER = "https://idp.example/dex"
EXPECTED = Expected(ISSUER, "moe-console", "moe-console", "n-123", leeway_s=60)
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
JWKS = {"keys": [KEY.as_dict(private=False)]}


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": "moe-console", "sub": "CiQwOGE4", "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-123",
            "email": "alice@example.org", "email_verified": True}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = KEY, alg: str = "RS256", kid: str | None = "k1") -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, payload, key)


def test_a_good_token_passes() -> None:
    found = check_claims(verify_signature(signed(claims()), JWKS), EXPECTED, now=NOW)
    assert (found["sub"], found["email"]) == ("CiQwOGE4", "alice@example.org")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"iss": "https://evil.example"}, "wrong issuer"),
    ({"aud": "other-app"}, "wrong audience"),
    ({"aud": ["other-app", "third"]}, "wrong audience"),
    ({"aud": ["moe-console", "other-app"], "azp": "other-app"}, "wrong authorized party"),
    ({"nonce": "n-999"}, "wrong nonce"),
    ({"nonce": None}, "wrong nonce"),
    ({"exp": NOW - 61}, "expired"),
    ({"iat": NOW + 120}, "in the future"),
    ({"sub": None}, "no 'sub' claim"),
])
def test_each_broken_claim_is_refused_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        check_claims(verify_signature(signed(claims(**changes)), JWKS), EXPECTED, now=NOW)


def test_several_audiences_pass_when_the_console_is_the_authorized_party() -> None:
    payload = claims(aud=["moe-console", "other-app"], azp="moe-console")
    assert check_claims(payload, EXPECTED, now=NOW)["azp"] == "moe-console"


def test_within_the_leeway_an_expired_token_still_passes() -> None:
    assert check_claims(claims(exp=NOW - 30), EXPECTED, now=NOW)["exp"] == NOW - 30


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused() -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(Refused, match="signature does not verify"):
        verify_signature(signed(claims(), forger), JWKS)


def test_a_key_the_provider_does_not_publish_asks_for_the_keys_again() -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    with pytest.raises(UnknownKey, match="k2"):
        verify_signature(signed(claims(), other, "ES256", "k2"), JWKS)
    keys = {"keys": [*JWKS["keys"], other.as_dict(private=False)]}
    assert verify_signature(signed(claims(), other, "ES256", "k2"), keys)["sub"] == "CiQwOGE4"


def test_hmac_and_unsigned_tokens_are_refused() -> None:
    secret = OctKey.import_key("s" * 32)
    with pytest.raises(Refused):
        verify_signature(signed(claims(), secret, "HS256", None), {"keys": [secret.as_dict(private=True)]})
    unsigned = "eyJhbGciOiJub25lIn0." + signed(claims()).split(".")[1] + "."
    with pytest.raises(Refused):
        verify_signature(unsigned, JWKS)
    with pytest.raises(Refused, match="not a"):
        verify_signature("not-a-jwt", JWKS)
