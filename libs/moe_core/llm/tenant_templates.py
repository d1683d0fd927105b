"""Expert templates a tenant admin makes (the console's and the admin API's /v1/admin/templates), stored in the
fleet store's `expert_templates` table, one row per (tenant, name): the template (moe_core.llm.templates.ExpertTemplate)
as JSON, when and by whom it was last changed. The repository's file templates (policy/templates.yaml) stay the
defaults every tenant has; a tenant's own template of the same name is that tenant's version of it.

Only the control plane writes the table (moe_core.runtime.pg.tables); SQL parameterised, no name built into a query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from moe_core.llm.templates import ExpertTemplate

COLUMNS = "tenant_id, name, body, created_at, updated_at, updated_by"
LIST = ("SELECT tenant_id, name, body, created_at, updated_at, updated_by FROM expert_templates "
        "WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id, name")
GET = ("SELECT tenant_id, name, body, created_at, updated_at, updated_by FROM expert_templates "
       "WHERE tenant_id = $1 AND name = $2")
INSERT = ("INSERT INTO expert_templates (tenant_id, name, body, updated_by) VALUES ($1, $2, $3::jsonb, $4) "
          "ON CONFLICT DO NOTHING "
          "RETURNING tenant_id, name, body, created_at, updated_at, updated_by")
UPDATE = ("UPDATE expert_templates SET body = $3::jsonb, updated_by = $4, updated_at = now() "
          "WHERE tenant_id = $1 AND name = $2 "
          "RETURNING tenant_id, name, body, created_at, updated_at, updated_by")
DELETE = "DELETE FROM expert_templates WHERE tenant_id = $1 AND name = $2 RETURNING name"


@dataclass(frozen=True)
class StoredTemplate:
    tenant_id: str
    name: str
    template: ExpertTemplate
    created_at: datetime
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> StoredTemplate:
        body = row["body"]
        return cls(tenant_id=row["tenant_id"], name=row["name"],
                   template=ExpertTemplate.model_validate(json.loads(body) if isinstance(body, str) else body),
                   created_at=row["created_at"], updated_at=row["updated_at"], updated_by=row["updated_by"])


def body_of(template: ExpertTemplate) -> str:
    """The template as stored: entries as `model@server` (or an object when a tier is stated)."""
    def ref(r: Any) -> Any:
        return {"model": r.model, "server": r.server, "tier": r.tier} if "tier" in r.model_fields_set else str(r)

    data: dict[str, Any] = {"description": template.description, "ensemble": template.ensemble,
                            "experts": {c: [ref(r) for r in refs] for c, refs in template.experts.items()}}
    for role in ("planner", "judge", "thinking"):
        refs = template.role(role)
        if refs is not None:
            data[role] = [ref(r) for r in refs]
    return json.dumps(data)


class TenantTemplates:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def list(self, tenants: list[str]) -> list[StoredTemplate]:
        return [StoredTemplate.of(r) for r in await self.pool.fetch(LIST, tenants)]

    async def get(self, tenant: str, name: str) -> StoredTemplate | None:
        row = await self.pool.fetchrow(GET, tenant, name)
        return None if row is None else StoredTemplate.of(row)

    async def create(self, tenant: str, name: str, template: ExpertTemplate, by: str) -> StoredTemplate | None:
        """The new row; None when the tenant has a template of that name already."""
        row = await self.pool.fetchrow(INSERT, tenant, name, body_of(template), by)
        return None if row is None else StoredTemplate.of(row)

    async def update(self, tenant: str, name: str, template: ExpertTemplate, by: str) -> StoredTemplate | None:
        row = await self.pool.fetchrow(UPDATE, tenant, name, body_of(template), by)
        return None if row is None else StoredTemplate.of(row)

    async def delete(self, tenant: str, name: str) -> bool:
        return await self.pool.fetchval(DELETE, tenant, name) is not None

    async def effective(self, tenant: str, defaults: Mapping[str, ExpertTemplate],
                        tier_boundary_b: float) -> dict[str, ExpertTemplate]:
        """The templates a request of `tenant` may select: the file defaults, each overlaid by the tenant's own of
        the same name, plus the tenant's others; every expert entry with its tier (as InferenceConfig gives the
        file's). The reader a stage uses to honour a tenant's template (not wired into the stages yet)."""
        found = dict(defaults)
        for stored in await self.list([tenant]):
            template = stored.template.model_copy()
            template.experts = {c: [r.sized(tier_boundary_b) for r in refs] for c, refs in template.experts.items()}
            found[stored.name] = template
        return found
