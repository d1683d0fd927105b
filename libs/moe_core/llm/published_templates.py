"""A tenant's own expert templates as the edge reads them: the control plane (the only writer of the
`expert_templates` table, moe_core.llm.tenant_templates) publishes each tenant's templates into one Redis key on every
create, edit and delete, and all of them when it starts; the gateway reads the key of the request's tenant when a
request names a template (gateway.template_select), so it never reads the table itself.

    control-plane:templates:<ns>:<tenant>   string, JSON {"version": 1, "templates": {name: template}}; no TTL
                                            (deleted when the tenant has none left)

The writer is control_plane.templates.publisher (it reads the table; this module does not, so the edge imports no SQL).
A publish reads the tenant's rows and writes the key under a per-tenant Postgres advisory lock, so two control-plane
replicas changing one tenant's templates at once leave the later state, never an older one. The key is written after
the change is committed: a deleted template stops applying with the next request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from moe_core.llm.templates import ExpertTemplate

log = logging.getLogger(__name__)
VERSION = 1


class PublishedTemplatesError(RuntimeError):
    """The published templates cannot be read (Redis down, or a value this version does not understand)."""


def published_key(namespace: str, tenant: str) -> str:
    return f"control-plane:templates:{namespace}:{tenant}"


def decode(raw: str) -> dict[str, ExpertTemplate]:
    try:
        data: dict[str, Any] = json.loads(raw)
        if data.get("version") != VERSION:
            raise PublishedTemplatesError(f"published templates of version {data.get('version')!r}, not {VERSION}")
        return {name: ExpertTemplate.model_validate(body) for name, body in data["templates"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise PublishedTemplatesError(f"the published templates cannot be read: {exc}") from None


class PublishedTemplates:
    """The edge's side: a tenant's own templates, as last published."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace

    async def of_tenant(self, tenant: str) -> dict[str, ExpertTemplate]:
        try:
            raw = await self.redis.get(published_key(self.namespace, tenant))
        except Exception as exc:  # Redis down or hung: the caller answers 503, never another template's models
            raise PublishedTemplatesError(f"the tenant's templates cannot be read: {exc}") from None
        return {} if raw is None else decode(raw if isinstance(raw, str) else raw.decode())
