"""A tenant's expert templates (moe_core.llm.tenant_templates), made and changed by its admins: the console's
templates page and an API client call the same routes.

    GET    /v1/admin/templates[?tenant_id=]          the tenants' own templates, the file defaults, the servers
    POST   /v1/admin/templates                       {tenant_id, name, template}                        -> 201
    GET    /v1/admin/templates/{tenant_id}/{name}    one
    PUT    /v1/admin/templates/{tenant_id}/{name}    {template}: replaces it                            -> one
    DELETE /v1/admin/templates/{tenant_id}/{name}                                                       -> deleted

A template is the file's (moe_core.llm.templates.ExpertTemplate): per expert category an ordered list of
`model@server` entries (or `model`: any server that has it), plus the planner's, the judge's and the thinking
step's; each entry is checked against the configured inference servers (an unknown server, a model the named
server or no server serves, an unknown category: 400 naming the entry). Every create, edit and delete is the
policy's decision (policy/opa/admin.rego, template.create|update|delete) and an audit event on the audit topic.
Another tenant's templates are unknown (404) to a tenant admin; the fleet operator's read of them is a decision
and a record.

After every change, and for every tenant when the control plane starts, the tenant's templates are published into
Redis (moe_core.llm.published_templates), where the edge reads them: a request naming one runs with its models, and a
deleted one is unknown to the next request. A change saved but not published (Redis unavailable) is a 503
`templates_not_published` saying so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from control_plane.admin.key_audit import change_event
from control_plane.admin.models import TENANT_ID
from control_plane.policy.gate import PolicyGate
from control_plane.templates.publisher import TemplatePublisher
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import admin_of
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.templates import NAME, ExpertTemplate, problems
from moe_core.llm.tenant_templates import StoredTemplate, TenantTemplates, body_of
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID)
    name: str = Field(pattern=NAME.pattern, description="lower-case letters, digits, '.', '_' or '-'")
    template: ExpertTemplate


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: ExpertTemplate


class TemplateOut(BaseModel):
    object: Literal["expert_template"] = "expert_template"
    tenant_id: str | None
    name: str
    source: Literal["tenant", "file"]
    template: dict[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, t: StoredTemplate) -> TemplateOut:
        return cls(tenant_id=t.tenant_id, name=t.name, source="tenant", template=_plain(t.template),
                   created_at=t.created_at, updated_at=t.updated_at, updated_by=t.updated_by)


class TemplateList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TemplateOut]
    defaults: list[TemplateOut] = Field(description="The repository's file templates (every tenant's defaults)")
    servers: dict[str, list[str]] = Field(description="server -> the models it is configured to serve")


def _plain(template: ExpertTemplate) -> dict[str, Any]:
    return dict(json.loads(body_of(template)))


class TemplatesApi:
    def __init__(self, bus: Bus, store: Callable[[], KeyStore], gate: PolicyGate, inference: InferenceConfig,
                 defaults: Mapping[str, ExpertTemplate], redis: Redis, namespace: str) -> None:
        self.bus = bus
        self.redis = redis
        self.namespace = namespace
        self.store = store
        self.gate = gate
        self.inference = inference
        self.defaults = defaults
        self.router = APIRouter(prefix="/v1/admin/templates", tags=["admin"], dependencies=[Depends(admin_of(store))])
        r = self.router
        r.add_api_route("", self.create, methods=["POST"], status_code=201, response_model=TemplateOut)
        r.add_api_route("", self.list, methods=["GET"], response_model=TemplateList)
        r.add_api_route("/{tenant_id}/{name}", self.get, methods=["GET"], response_model=TemplateOut)
        r.add_api_route("/{tenant_id}/{name}", self.update, methods=["PUT"], response_model=TemplateOut)
        r.add_api_route("/{tenant_id}/{name}", self.delete, methods=["DELETE"])

    def templates(self) -> TenantTemplates:
        return TenantTemplates(self.store().pool)

    def publisher(self) -> TemplatePublisher:
        return TemplatePublisher(self.store().pool, self.redis, self.namespace)

    async def start(self) -> None:
        """Every tenant's templates into Redis for the edge (they may have changed while no control plane ran)."""
        try:
            count = await self.publisher().publish_all()
        except Exception:  # the control plane serves on; each tenant's next change publishes it
            log.exception("tenant expert templates not published at start: the edge has the last published ones")
            return
        log.info("tenant expert templates published for %d tenants", count)

    async def _publish(self, tenant: str) -> None:
        try:
            await self.publisher().publish(tenant)
        except Exception as exc:
            log.exception("tenant %s: expert templates not published", tenant)
            raise OpenAIError(503, f"The change is saved, but the edge could not be given the templates of tenant "
                                   f"'{tenant}' ({type(exc).__name__}): requests still see the previous ones until "
                                   "the next change or the control plane's restart publishes them.", "server_error",
                              code="templates_not_published") from None

    # -- scope ---------------------------------------------------------------------------------------------
    async def _scope(self, admin: ApiKey, tenant: str, action: str, subject: str) -> None:
        """Another tenant is unknown to a tenant admin (404); the operator's access is the policy's decision
        (a read of another tenant an audit record); a write is always the policy's decision."""
        unknown = OpenAIError(404, f"No tenant '{tenant}'", param="tenant_id", code="tenant_not_found")
        if tenant not in admin.tenant_ids and admin.role != "operator":
            raise unknown
        if action != "template.read" or tenant not in admin.tenant_ids:
            try:
                await self.gate.decide(admin, "moe/admin/decision", action, tenant, {"tenants": [tenant]}, subject)
            except OpenAIError as exc:
                raise unknown if exc.status == 404 else exc from None

    def _check(self, name: str, template: ExpertTemplate) -> None:
        """400 naming every entry the configured servers cannot serve."""
        found = problems(name, template, self.inference.servers)
        served = {s.name: set(s.models) for s in self.inference.servers}
        found += [f"template {name!r}: {place}: {ref}: the server {ref.server!r} does not serve {ref.model!r} "
                  f"(it serves: {', '.join(sorted(served[ref.server]))})"
                  for place, refs in template.lists().items() for ref in refs
                  if ref.server in served and served[ref.server] and ref.model not in served[ref.server]]
        if found:
            raise OpenAIError(400, "; ".join(found), param="template", code="invalid_template")

    async def _audit(self, admin: ApiKey, action: str, tenant: str, name: str, details: dict[str, Any]) -> None:
        event = change_event(f"key:{admin.id}", action, f"template:{tenant}/{name}", tenant,
                             {"name": name, "by_principal": admin.principal_id, **details})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the change is made; its record must not be lost silently
            log.exception("audit event %s %s/%s not published", action, tenant, name)

    @staticmethod
    def _name(name: str) -> None:
        if not NAME.match(name):
            raise OpenAIError(400, "a template name is lower-case letters, digits, '.', '_' or '-' (at most 63)",
                              param="name", code="invalid_value")

    @staticmethod
    def _missing(tenant: str, name: str) -> OpenAIError:
        return OpenAIError(404, f"Tenant '{tenant}' has no expert template '{name}'", param="name",
                           code="template_not_found")

    # -- routes --------------------------------------------------------------------------------------------
    async def list(self, request: Request, tenant_id: str | None = None) -> TemplateList:
        admin: ApiKey = request.state.admin
        tenants = list(admin.tenant_ids)
        if tenant_id is not None:
            await self._scope(admin, tenant_id, "template.read", f"templates:{tenant_id}")
            tenants = [tenant_id]
        found = await self.templates().list(tenants)
        defaults = [TemplateOut(tenant_id=None, name=n, source="file", template=_plain(t))
                    for n, t in sorted(self.defaults.items())]
        return TemplateList(data=[TemplateOut.of(t) for t in found], defaults=defaults,
                            servers={s.name: list(s.models) for s in self.inference.servers})

    async def get(self, tenant_id: str, name: str, request: Request) -> TemplateOut:
        await self._scope(request.state.admin, tenant_id, "template.read", f"template:{tenant_id}/{name}")
        found = await self.templates().get(tenant_id, name)
        if found is None:
            raise self._missing(tenant_id, name)
        return TemplateOut.of(found)

    async def create(self, body: TemplateCreate, request: Request) -> TemplateOut:
        admin: ApiKey = request.state.admin
        await self._scope(admin, body.tenant_id, "template.create", f"template:{body.tenant_id}/{body.name}")
        self._check(body.name, body.template)
        made = await self.templates().create(body.tenant_id, body.name, body.template, f"key:{admin.id}")
        if made is None:
            raise OpenAIError(409, f"Tenant '{body.tenant_id}' has an expert template '{body.name}' already: "
                                   "edit it", param="name", code="template_exists")
        await self._audit(admin, "template.created", body.tenant_id, body.name, {"template": _plain(made.template)})
        await self._publish(body.tenant_id)
        return TemplateOut.of(made)

    async def update(self, tenant_id: str, name: str, body: TemplateUpdate, request: Request) -> TemplateOut:
        admin: ApiKey = request.state.admin
        self._name(name)
        await self._scope(admin, tenant_id, "template.update", f"template:{tenant_id}/{name}")
        self._check(name, body.template)
        before = await self.templates().get(tenant_id, name)
        changed = await self.templates().update(tenant_id, name, body.template, f"key:{admin.id}")
        if changed is None or before is None:
            raise self._missing(tenant_id, name)
        await self._audit(admin, "template.updated", tenant_id, name,
                          {"before": _plain(before.template), "template": _plain(changed.template)})
        await self._publish(tenant_id)
        return TemplateOut.of(changed)

    async def delete(self, tenant_id: str, name: str, request: Request) -> dict[str, Any]:
        admin: ApiKey = request.state.admin
        self._name(name)
        await self._scope(admin, tenant_id, "template.delete", f"template:{tenant_id}/{name}")
        before = await self.templates().get(tenant_id, name)
        if before is None or not await self.templates().delete(tenant_id, name):
            raise self._missing(tenant_id, name)
        await self._audit(admin, "template.deleted", tenant_id, name, {"before": _plain(before.template)})
        await self._publish(tenant_id)
        return {"object": "expert_template.deleted", "tenant_id": tenant_id, "name": name, "deleted": True}
