"""The admin API (admin and operator keys; a user key gets 403): tenants and keys, their limits, expiry and models.

Two scopes, decided by Open Policy Agent (policy/opa/admin.rego, through control_plane.policy.gate; every
decision an audit record): a tenant admin (role admin) manages its own tenants' keys and limits only (a key
for another tenant: 403; another tenant's key or tenant: 404); the fleet operator (role operator) creates
tenants, manages every key and reads across tenants, each such read an audit record of its own.

    POST  /v1/admin/tenants                 create a tenant                       -> 201 TenantOut
    GET   /v1/admin/tenants                 list tenants                          -> TenantList
    GET   /v1/admin/tenants/{id}            one tenant                            -> TenantOut
    PATCH /v1/admin/tenants/{id}            name, limits, disabled                -> TenantOut
    POST  /v1/admin/keys                    create a key (secret shown once)      -> 201 KeySecret
                                            (for a principal: principal_id; principals_api.py)
    GET   /v1/admin/keys[?tenant_id=]       list keys (never secrets)             -> KeyList
    GET   /v1/admin/keys/{id}               one key                               -> KeyOut
    PATCH /v1/admin/keys/{id}               name, expiry, models, limits, template -> KeyOut
                                            (default_template: a file template or one of the key's
                                            first tenant's own, /v1/admin/templates; another's is a 404)
    POST  /v1/admin/keys/{id}/rotate        new secret, old one refused at once   -> KeySecret
    POST  /v1/admin/keys/{id}/revoke        refused fleet-wide from now on        -> KeyOut

Every change is announced to every gateway and control-plane replica (moe_core.access.key_events: their key
caches are cleared) and published as an AuditEvent on the audit topic (actor: the admin key; never a secret).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from redis.exceptions import RedisError

from control_plane.admin.key_audit import change_event
from control_plane.admin.models import (
    KeyCreate,
    KeyList,
    KeyOut,
    KeySecret,
    KeyUpdate,
    TenantCreate,
    TenantList,
    TenantOut,
    TenantUpdate,
)
from control_plane.policy.gate import PolicyGate
from moe_core.access.key_events import KeyEvents
from moe_core.access.keystore import ApiKey, KeyStore, Tenant
from moe_core.access.principals import Principals
from moe_core.access.request_auth import admin_of
from moe_core.llm.model_map import DEFAULT_MODEL_MAP, resolve
from moe_core.llm.modes import MODES
from moe_core.llm.templates import ExpertTemplate
from moe_core.llm.tenant_templates import TenantTemplates
from moe_core.policy.classes import ClassFile
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)


def _expiry(body: KeyCreate | KeyUpdate) -> datetime | None:
    if body.expires_in_days is not None:
        return datetime.now(UTC) + timedelta(days=body.expires_in_days)
    return body.expires_at


def _no_key(key_id: str) -> OpenAIError:
    return OpenAIError(404, f"No active key '{key_id}'", param="key_id", code="key_not_found")


def _no_tenant(tenant_id: str) -> OpenAIError:
    return OpenAIError(404, f"No tenant '{tenant_id}'", param="tenant_id", code="tenant_not_found")


class AdminApi:
    def __init__(self, bus: Bus, store: Callable[[], KeyStore], events: KeyEvents, gate: PolicyGate,
                 templates: Mapping[str, ExpertTemplate] | None = None,
                 model_map: Mapping[str, str] | None = None, classes: ClassFile | None = None) -> None:
        self.bus = bus
        self.classes = classes  # the data classes a key's data_class may name (policy/data-classes.yaml)
        self.gate = gate
        self.store = store
        self.events = events
        self.templates = templates or {}  # the expert templates a key's default_template may name
        self.model_map = DEFAULT_MODEL_MAP if model_map is None else model_map  # the edge's (MOE_MODEL_MAP)
        self.router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin_of(store))])
        r = self.router
        r.add_api_route("/tenants", self.create_tenant, methods=["POST"], status_code=201, response_model=TenantOut)
        r.add_api_route("/tenants", self.list_tenants, methods=["GET"], response_model=TenantList)
        r.add_api_route("/tenants/{tenant_id}", self.get_tenant, methods=["GET"], response_model=TenantOut)
        r.add_api_route("/tenants/{tenant_id}", self.update_tenant, methods=["PATCH"], response_model=TenantOut)
        r.add_api_route("/keys", self.create_key, methods=["POST"], status_code=201, response_model=KeySecret)
        r.add_api_route("/keys", self.list_keys, methods=["GET"], response_model=KeyList)
        r.add_api_route("/keys/{key_id}", self.get_key, methods=["GET"], response_model=KeyOut)
        r.add_api_route("/keys/{key_id}", self.update_key, methods=["PATCH"], response_model=KeyOut)
        r.add_api_route("/keys/{key_id}/rotate", self.rotate_key, methods=["POST"], response_model=KeySecret)
        r.add_api_route("/keys/{key_id}/revoke", self.revoke_key, methods=["POST"], response_model=KeyOut)

    # -- tenants ---------------------------------------------------------------------------------------
    async def _decide(self, request: Request, action: str, tenants: list[str], subject: str,
                      **resource: Any) -> None:
        """The policy's decision on `action` over a subject of `tenants` (raises its refusal)."""
        admin: ApiKey = request.state.admin
        await self.gate.decide(admin, "moe/admin/decision", action, tenants[0] if tenants else "",
                               {"tenants": tenants, **resource}, subject)

    async def _read(self, request: Request, action: str, tenants: list[str], subject: str) -> None:
        """A read of another tenant's data is a policy decision (and an audit record); one's own is not."""
        admin: ApiKey = request.state.admin
        if not set(tenants) <= set(admin.tenant_ids):
            await self._decide(request, action, tenants, subject)

    async def create_tenant(self, body: TenantCreate, request: Request) -> TenantOut:
        await self._decide(request, "tenant.create", [body.id], f"tenant:{body.id}")
        tenant = await self.store().create_tenant(body.id, body.name, body.limits)
        if tenant is None:
            raise OpenAIError(409, f"Tenant '{body.id}' exists already", param="id", code="tenant_exists")
        await self._changed(request, "tenant.created", f"tenant:{tenant.id}", tenant.id, body.model_dump(mode="json"))
        return TenantOut.of(tenant)

    async def list_tenants(self, request: Request) -> TenantList:
        """A tenant admin's own tenants; the operator's list of every tenant is a cross-tenant read."""
        admin: ApiKey = request.state.admin
        tenants: list[Tenant] = await self.store().tenants()
        if admin.role == "operator":
            await self._read(request, "tenant.read", [t.id for t in tenants] or list(admin.tenant_ids), "tenants")
        else:
            tenants = [t for t in tenants if t.id in admin.tenant_ids]
        return TenantList(data=[TenantOut.of(t) for t in tenants])

    async def get_tenant(self, tenant_id: str, request: Request) -> TenantOut:
        try:  # another tenant is unknown to whoever may not read it
            await self._read(request, "tenant.read", [tenant_id], f"tenant:{tenant_id}")
        except OpenAIError as exc:
            raise _no_tenant(tenant_id) if exc.status == 404 else exc from None
        tenant = await self.store().tenant(tenant_id)
        if tenant is None:
            raise _no_tenant(tenant_id)
        return TenantOut.of(tenant)

    async def update_tenant(self, tenant_id: str, body: TenantUpdate, request: Request) -> TenantOut:
        await self._decide(request, "tenant.update", [tenant_id], f"tenant:{tenant_id}",
                           fields=sorted(body.model_dump(exclude_unset=True)))
        tenant = await self.store().update_tenant(tenant_id, name=body.name, limits=body.limits,
                                                  disabled=body.disabled)
        if tenant is None:
            raise _no_tenant(tenant_id)
        await self._changed(request, "tenant.updated", f"tenant:{tenant_id}", tenant_id,
                            body.model_dump(mode="json", exclude_unset=True))
        return TenantOut.of(tenant)

    # -- keys ------------------------------------------------------------------------------------------
    async def create_key(self, body: KeyCreate, request: Request) -> KeySecret:
        store = self.store()
        # the policy first: a tenant admin learns nothing of other tenants, not even whether they exist
        holder = await Principals(store.pool).get(body.principal_id) if body.principal_id is not None else None
        await self._decide(request, "key.create", list(body.tenant_ids), "key:new", role=body.role,
                           principal=body.principal_id, principal_kind=holder.kind if holder else None)
        for tenant_id in body.tenant_ids:
            if await store.tenant(tenant_id) is None:
                raise _no_tenant(tenant_id)
        if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
            raise OpenAIError(400, f"expires_at {body.expires_at.isoformat()} is in the past: the key would never "
                                   "work", param="expires_at", code="invalid_expiry")
        await self._check_template(body.default_template, body.tenant_ids[0])
        await self._check_models(body.allowed_models, body.tenant_ids[0])
        self._check_class(request, body.data_class)
        if body.principal_id is not None:
            await self._check_principal(body.principal_id, body.tenant_ids)
        key, secret = await store.create(body.name, body.role, body.tenant_ids, expires_at=_expiry(body),
                                         allowed_models=body.allowed_models, limits=body.limits,
                                         default_template=body.default_template, principal_id=body.principal_id,
                                         data_class=body.data_class)
        await self._changed(request, "key.created", f"key:{key.id}", key.default_tenant,
                            KeyOut.of(key).model_dump(mode="json"))
        return KeySecret(**KeyOut.of(key).model_dump(), secret=secret)

    async def list_keys(self, request: Request, tenant_id: str | None = None) -> KeyList:
        """A tenant admin sees the keys of its own tenants; the operator every key (a cross-tenant read)."""
        admin: ApiKey = request.state.admin
        if tenant_id is not None:
            await self._read(request, "key.read", [tenant_id], f"keys:{tenant_id}")
        keys = await self.store().keys(tenant_id)
        if admin.role == "operator" and tenant_id is None:
            await self._read(request, "key.read", sorted({t for k in keys for t in k.tenant_ids}), "keys")
        elif tenant_id is None:
            keys = [k for k in keys if set(k.tenant_ids) & set(admin.tenant_ids)]
        return KeyList(data=[KeyOut.of(k) for k in keys])

    async def _key(self, key_id: str, request: Request, action: str) -> ApiKey:
        """The key (404 if unknown) once the policy lets the caller `action` it."""
        key = await self.store().get(key_id)
        unknown = OpenAIError(404, f"No key '{key_id}'", param="key_id", code="key_not_found")
        if key is None:
            raise unknown
        try:  # another tenant's key is unknown to whoever may not read it
            await self._read(request, "key.read", list(key.tenant_ids), f"key:{key_id}")
        except OpenAIError as exc:
            raise unknown if exc.status == 404 else exc from None
        if action != "key.read":
            await self._decide(request, action, list(key.tenant_ids), f"key:{key_id}", role=key.role,
                               principal=key.principal_id, principal_kind=key.principal_kind)
        return key

    async def get_key(self, key_id: str, request: Request) -> KeyOut:
        return KeyOut.of(await self._key(key_id, request, "key.read"))

    async def update_key(self, key_id: str, body: KeyUpdate, request: Request) -> KeyOut:
        before = await self._key(key_id, request, "key.update")
        await self._check_template(body.default_template, before.default_tenant)
        await self._check_models(body.allowed_models, before.default_tenant)
        self._check_class(request, body.data_class, before.data_class, body.clear_data_class)
        key = await self.store().update(
            key_id, name=body.name, expires_at=_expiry(body), clear_expiry=body.clear_expiry,
            allowed_models=body.allowed_models, clear_models=body.clear_allowed_models, limits=body.limits,
            default_template=body.default_template, clear_template=body.clear_default_template,
            data_class=body.data_class, clear_class=body.clear_data_class)
        if key is None:
            raise _no_key(key_id)
        await self._changed(request, "key.updated", f"key:{key_id}", key.default_tenant,
                            body.model_dump(mode="json", exclude_unset=True))
        if key.data_class != before.data_class:  # where its requests may go changes: a record of its own
            await self._changed(request, "key.data_class_changed", f"key:{key_id}", key.default_tenant,
                                {"before": before.data_class, "after": key.data_class})
        return KeyOut.of(key)

    def _check_class(self, request: Request, wanted: str | None, before: str | None = None,
                     clear: bool = False) -> None:
        """A key's data class is one the data-class file names (else 400); only the fleet operator lowers or
        clears it (403): a tenant admin may raise where its key's requests go, never widen it."""
        if wanted is None and not clear:
            return
        book = self.classes.current() if self.classes is not None else None
        if wanted is not None and (book is None or not book.known(wanted)):
            known = ", ".join(book.classes) if book is not None else "none: no data-class file"
            raise OpenAIError(400, f"data_class: unknown data class '{wanted}' (known: {known})", param="data_class",
                              code="invalid_data_class")
        lowered = before is not None and (clear or (book is not None and book.known(before) and wanted is not None
                                                    and book.rank(wanted) < book.rank(before)))
        admin: ApiKey = request.state.admin
        if lowered and admin.role != "operator":
            raise OpenAIError(403, f"only the fleet operator may lower or clear a key's data class ({before})",
                              "permission_error", param="data_class", code="data_class_lowered")

    async def _check_principal(self, principal_id: str, tenant_ids: list[str]) -> None:
        principal = await Principals(self.store().pool).get(principal_id)
        if principal is None or principal.disabled_at is not None:
            raise OpenAIError(404, f"No active principal '{principal_id}'", param="principal_id",
                              code="principal_not_found")
        if principal.tenant not in tenant_ids:
            raise OpenAIError(400, f"The key's tenants must include its principal's tenant '{principal.tenant}'",
                              param="principal_id", code="invalid_value")

    async def _check_models(self, models: list[str] | None, tenant: str) -> None:
        """A key's allowed models are ids a request can use: a mode or a client id the model map takes, either
        with `@<template>` of a template the key's default tenant has. An id no request can name (a typo) is a
        400, not a key that is refused every model."""
        for model in models or []:
            found = None if any(c in model for c in "*?[") else resolve(model, self.model_map)
            if found is None:
                raise OpenAIError(
                    400, f"allowed_models: '{model}' is not a model id a request can use: a mode "
                         f"({', '.join(MODES)}) or a client model id the model map takes ({', '.join(self.model_map)}"
                         "), either optionally with @<expert template>; ids, not patterns",
                    param="allowed_models", code="model_not_found")
            await self._check_template(found[2], tenant, "allowed_models")

    async def _check_template(self, name: str | None, tenant: str, param: str = "default_template") -> None:
        """A key's default template: a file template or one of its default tenant's own (the tenant its requests
        run for, whose templates the edge looks the name up in); another tenant's is unknown (404)."""
        if name is None or name in self.templates:
            return
        own = {t.name for t in await TenantTemplates(self.store().pool).list([tenant])}
        if name not in own:
            known = ", ".join(sorted({*self.templates, *own})) or "none is configured"
            raise OpenAIError(404, f"The expert template '{name}' does not exist (templates: {known})",
                              param=param, code="template_not_found")

    async def rotate_key(self, key_id: str, request: Request) -> KeySecret:
        await self._key(key_id, request, "key.rotate")
        rotated = await self.store().rotate(key_id)
        if rotated is None:
            raise _no_key(key_id)
        key, secret = rotated
        # who rotated which key, and the key as it is now (as key.created records it; never the secret)
        await self._changed(request, "key.rotated", f"key:{key_id}", key.default_tenant,
                            KeyOut.of(key).model_dump(mode="json"))
        return KeySecret(**KeyOut.of(key).model_dump(), secret=secret)

    async def revoke_key(self, key_id: str, request: Request) -> KeyOut:
        await self._key(key_id, request, "key.revoke")
        store = self.store()
        if not await store.revoke(key_id):
            raise _no_key(key_id)
        key = await store.get(key_id)
        assert key is not None
        await self._changed(request, "key.revoked", f"key:{key_id}", key.default_tenant, {})
        return KeyOut.of(key)

    # -- announcements ---------------------------------------------------------------------------------
    async def _changed(self, request: Request, action: str, subject: str, tenant_id: str,
                       details: dict[str, Any]) -> None:
        """Clear every replica's key cache, then publish the audit event."""
        try:
            await self.events.announce(subject)
        except (RedisError, OSError) as exc:  # the caches expire by themselves (MOE_KEY_CACHE_TTL_S)
            log.error("key change %s not announced: %s", subject, exc)
        admin: ApiKey = request.state.admin
        event = change_event(f"key:{admin.id}", action, subject, tenant_id,
                             {**details, "by_principal": admin.principal_id})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the change is made; its record must not be lost silently
            log.exception("audit event %s %s not published", action, subject)
