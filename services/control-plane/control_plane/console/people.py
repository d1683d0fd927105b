"""Who a verified OpenID Connect sign-in is: the person principal it maps to, by this policy (docs/identity.md):

1. the person bound to the token's issuer and subject: provisioned so by an admin (POST /v1/admin/principals,
   kind person, with `oidc_issuer` and `oidc_subject`), or made at an earlier sign-in;
2. else, when the verified e-mail address is in MOE_OIDC_ALLOWED_EMAILS or one of the token's groups is in
   MOE_OIDC_ALLOWED_GROUPS, a new person in MOE_OIDC_DEFAULT_TENANT, bound to the subject;
3. else refused (403): nobody is created on first sign-in unless the settings say so.

An e-mail address never makes a sign-in someone: a person whose address an admin typed is not whoever the
provider vouches for at that address (an admin could otherwise name an address they control and count it as a
second approver).

A disabled person is refused whichever way it was found.

The console role is the identity provider's word, not the console's: a sign-in whose groups claim names one of
MOE_OIDC_ADMIN_GROUPS administers its tenant; anyone else is refused before anything is created or bound
(`console_role`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control_plane.console.oidc_settings import OidcSettings
from control_plane.console.oidc_tokens import Refused
from moe_core.access.keystore import Role
from moe_core.access.principals import Principal, PrincipalExists, Principals


def _groups(claims: Mapping[str, Any], claim: str) -> set[str]:
    found = claims.get(claim)
    return {str(g) for g in found} if isinstance(found, list) else set()


def console_role(claims: Mapping[str, Any], settings: OidcSettings) -> Role:
    """The role a verified sign-in gets from its groups (the admin role: the console is for admins), or Refused."""
    if _groups(claims, settings.groups_claim) & settings.admins():
        return "admin"
    who = claims.get("email") if isinstance(claims.get("email"), str) else claims.get("sub")
    raise Refused(f"{who} is in none of the console's admin groups ({', '.join(sorted(settings.admins()))}): the "
                  f"console's roles come from the identity provider's groups (claim {settings.groups_claim!r})", 403)


def display_name(claims: Mapping[str, Any]) -> str:
    for name in ("name", "preferred_username", "email", "sub"):
        if isinstance(claims.get(name), str) and claims[name].strip():
            return str(claims[name]).strip()[:200]
    return ""


async def person_for(claims: Mapping[str, Any], settings: OidcSettings, principals: Principals) -> Principal:
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    verified = email is not None and claims.get("email_verified") is True
    try:
        found = await principals.by_subject(issuer, subject)
        if found is None and _allowed(email if verified else None, _groups(claims, settings.groups_claim), settings):
            found = await principals.create("person", settings.default_tenant, display_name(claims),
                                            email=email if verified else None, issuer=issuer, subject=subject)
    except PrincipalExists as exc:
        raise Refused(f"{exc}: ask an operator to check the console's principals", 403) from None
    if found is None:
        who = email or subject
        raise Refused(f"{who} signed in at the identity provider but is not provisioned for this console: an operator "
                      f"adds people by their subject ({subject!r} at {issuer}) with POST /v1/admin/principals (or "
                      "MOE_OIDC_ALLOWED_EMAILS / _GROUPS)", 403)
    if found.kind != "person":
        raise Refused(f"principal {found.id} is a service account: it cannot sign in", 403)
    if found.disabled_at is not None:
        raise Refused(f"principal {found.id} is disabled", 403)
    return found


def _allowed(email: str | None, groups: set[str], settings: OidcSettings) -> bool:
    return (email is not None and email.lower() in settings.emails()) or bool(groups & settings.groups())
