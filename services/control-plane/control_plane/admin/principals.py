"""The admin API's principals (admin and operator keys only): who holds keys and console sessions. Scoped as the
keys are (policy/opa/admin.rego, principal.create and principal.read, through control_plane.policy.gate): a tenant
admin makes and sees the principals of its own tenants only (another tenant's: 403 to make, 404 to read); the
fleet operator every tenant's, each read across tenants an audit record.

    POST  /v1/admin/principals                  a service account, or a person by their OIDC subject  -> 201
    GET   /v1/admin/principals[?tenant_id=]     list                                                   -> list
    GET   /v1/admin/principals/{id}             one, with the ids of its keys                          -> one
    POST  /v1/admin/principals/{id}/disable     its keys and console sessions refused from now on      -> one
    POST  /v1/admin/principals/{id}/enable      accepted again                                          -> one

A key is created for a principal with POST /v1/admin/keys {"principal_id": ...}; a key created without one
gets a service account of its own. A person is provisioned here by the identity provider's issuer and subject
(`oidc_issuer`, `oidc_subject`: the ID token's `iss` and `sub`), never by an e-mail address an admin typed: only
a sign-in whose verified ID token carries that subject is that person (docs/identity.md), and their keys come only
from their own sign-in (policy/opa/admin.rego). An e-mail address, if given, is contact data and binds nothing.
Every change is an audit event.

Disabling is the policy's decision (principal.disable: a tenant admin disables its own tenant's principals, not
itself and not a holder of operator keys); it is announced to every replica at once (their key caches cleared,
moe_core.access.key_events), so the principal's keys answer 401 principal_disabled and its console sessions end
on their next request; its keys are kept (enable makes them work again, unless revoked or expired meanwhile).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis.exceptions import RedisError

from control_plane.admin.key_audit import change_event
from control_plane.admin.models import TENANT_ID
from control_plane.policy.gate import PolicyGate
from moe_core.access.key_events import KeyEvents
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.principals import Principal, PrincipalExists, Principals
from moe_core.access.request_auth import admin_of
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
EMAIL = r"^[^@\s]{1,128}@[^@\s]{1,253}$"


class PrincipalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["service", "person"] = "service"
    tenant_id: str = Field(pattern=TENANT_ID, description="The (existing) tenant the principal belongs to")
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, pattern=EMAIL, max_length=320,
                              description="A person's e-mail address: contact data only (it binds nothing)")
    oidc_issuer: str | None = Field(default=None, min_length=1, max_length=500,
                                    description="A person's identity provider (the ID token's `iss`)")
    oidc_subject: str | None = Field(default=None, min_length=1, max_length=255,
                                     description="A person's subject at that provider (the ID token's `sub`)")

    @model_validator(mode="after")
    def _person_has_subject(self) -> PrincipalCreate:
        if self.kind == "person" and not (self.oidc_issuer and self.oidc_subject):
            raise ValueError("a person is provisioned by the identity provider's subject (oidc_issuer and "
                             "oidc_subject, the ID token's iss and sub), never by an e-mail address")
        if self.kind == "service" and (self.email or self.oidc_issuer or self.oidc_subject):
            raise ValueError("a service account has no e-mail address or OIDC subject")
        return self


class PrincipalOut(BaseModel):
    object: Literal["principal"] = "principal"
    id: str
    kind: str
    tenant_id: str
    display_name: str
    email: str | None
    oidc_issuer: str | None
    oidc_subject: str | None
    created_at: datetime | None
    disabled_at: datetime | None
    key_ids: list[str] | None = None

    @classmethod
    def of(cls, p: Principal, keys: list[ApiKey] | None = None) -> PrincipalOut:
        return cls(id=p.id, kind=p.kind, tenant_id=p.tenant, display_name=p.display_name, email=p.email,
                   oidc_issuer=p.oidc_issuer, oidc_subject=p.oidc_subject, created_at=p.created_at,
                   disabled_at=p.disabled_at, key_ids=None if keys is None else [k.id for k in keys])


class PrincipalList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PrincipalOut]


class PrincipalsApi:
    def __init__(self, bus: Bus, store: Callable[[], KeyStore], gate: PolicyGate, events: KeyEvents) -> None:
        self.bus = bus
        self.events = events
        self.gate = gate
        self.store = store
        self.router = APIRouter(prefix="/v1/admin/principals", tags=["admin"], dependencies=[Depends(admin_of(store))])
        r = self.router
        r.add_api_route("", self.create, methods=["POST"], status_code=201, response_model=PrincipalOut)
        r.add_api_route("", self.list, methods=["GET"], response_model=PrincipalList)
        r.add_api_route("/{principal_id}", self.get, methods=["GET"], response_model=PrincipalOut)
        r.add_api_route("/{principal_id}/disable", self.disable, methods=["POST"], response_model=PrincipalOut)
        r.add_api_route("/{principal_id}/enable", self.enable, methods=["POST"], response_model=PrincipalOut)

    def principals(self) -> Principals:
        return Principals(self.store().pool)

    async def _decide(self, admin: ApiKey, action: str, tenants: Sequence[str], subject: str) -> None:
        """The policy's decision on `action` over principals of `tenants` (raises its refusal)."""
        await self.gate.decide(admin, "moe/admin/decision", action, tenants[0] if tenants else "",
                               {"tenants": [*tenants]}, subject)

    async def _read(self, admin: ApiKey, tenants: Sequence[str], subject: str) -> None:
        """A read of another tenant's principals is a policy decision (and an audit record); one's own is not."""
        if not set(tenants) <= set(admin.tenant_ids):
            await self._decide(admin, "principal.read", tenants, subject)

    async def create(self, body: PrincipalCreate, request: Request) -> PrincipalOut:
        # the policy first: a tenant admin learns nothing of other tenants, not even whether they exist
        await self._decide(request.state.admin, "principal.create", [body.tenant_id], "principal:new")
        if await self.store().tenant(body.tenant_id) is None:
            raise OpenAIError(404, f"No tenant '{body.tenant_id}'", param="tenant_id", code="tenant_not_found")
        try:
            made = await self.principals().create(body.kind, body.tenant_id, body.display_name, email=body.email,
                                                  issuer=body.oidc_issuer, subject=body.oidc_subject)
        except PrincipalExists as exc:
            raise OpenAIError(409, str(exc), param="oidc_subject", code="principal_exists") from None
        admin: ApiKey = request.state.admin
        event = change_event(f"key:{admin.id}", "principal.created", f"principal:{made.id}", made.tenant,
                             {**body.model_dump(mode="json"), "by_principal": admin.principal_id})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the change is made; its record must not be lost silently
            log.exception("audit event principal.created %s not published", made.id)
        return PrincipalOut.of(made, [])

    async def list(self, request: Request, tenant_id: str | None = None) -> PrincipalList:
        """A tenant admin sees the principals of its own tenants; the operator every one (a cross-tenant read)."""
        admin: ApiKey = request.state.admin
        if tenant_id is not None:
            await self._read(admin, [tenant_id], f"principals:{tenant_id}")
        found = await self.principals().list(tenant_id)
        if admin.role == "operator" and tenant_id is None:
            await self._read(admin, sorted({p.tenant for p in found}), "principals")
        elif tenant_id is None:
            found = [p for p in found if p.tenant in admin.tenant_ids]
        return PrincipalList(data=[PrincipalOut.of(p) for p in found])

    async def _found(self, principal_id: str, admin: ApiKey) -> Principal:
        """The principal (404 if unknown, or another tenant's to whoever may not read it)."""
        found = await self.principals().get(principal_id)
        unknown = OpenAIError(404, f"No principal '{principal_id}'", param="principal_id",
                              code="principal_not_found")
        if found is None:
            raise unknown
        try:  # another tenant's principal is unknown to whoever may not read it
            await self._read(admin, [found.tenant], f"principal:{principal_id}")
        except OpenAIError as exc:
            raise unknown if exc.status == 404 else exc from None
        return found

    async def get(self, principal_id: str, request: Request) -> PrincipalOut:
        found = await self._found(principal_id, request.state.admin)
        return PrincipalOut.of(found, await self.store().keys(principal_id=principal_id))

    async def disable(self, principal_id: str, request: Request) -> PrincipalOut:
        return await self._set_disabled(principal_id, request, True)

    async def enable(self, principal_id: str, request: Request) -> PrincipalOut:
        return await self._set_disabled(principal_id, request, False)

    async def _set_disabled(self, principal_id: str, request: Request, disabled: bool) -> PrincipalOut:
        admin: ApiKey = request.state.admin
        found = await self._found(principal_id, admin)
        keys = await self.store().keys(principal_id=principal_id)
        roles = {k.role for k in keys}
        role = "operator" if "operator" in roles else "admin" if "admin" in roles else "user"
        action = "principal.disable" if disabled else "principal.enable"
        await self.gate.decide(admin, "moe/admin/decision", action, found.tenant, {
            "tenants": [found.tenant], "principal": found.id, "role": role}, f"principal:{found.id}")
        changed = await self.principals().set_disabled(found.id, disabled)
        if changed is None:
            raise OpenAIError(404, f"No principal '{principal_id}'", param="principal_id", code="principal_not_found")
        try:  # every replica's key cache: the principal's keys are refused (or accepted again) at once
            await self.events.announce(f"principal:{found.id}")
        except (RedisError, OSError) as exc:  # the caches expire by themselves (MOE_KEY_CACHE_TTL_S)
            log.error("principal change %s not announced: %s", found.id, exc)
        event = change_event(f"key:{admin.id}", "principal.disabled" if disabled else "principal.enabled",
                             f"principal:{found.id}", found.tenant,
                             {"by_principal": admin.principal_id, "key_ids": [k.id for k in keys],
                              "disabled_at": changed.disabled_at.isoformat() if changed.disabled_at else None})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the change is made; its record must not be lost silently
            log.exception("audit event %s %s not published", event.action, found.id)
        return PrincipalOut.of(changed, keys)
