"""Which expert template (moe_core.llm.templates) a request runs with: the model id's suffix
(`moe-orchestrator@<name>`, also after a mode or a mapped client id: `moe-orchestrator-code@<name>`), else
the `X-MOE-Template` header, else the API key's default template, else none (the global assignments).

The names a request may use are the file templates (policy/templates.yaml, every tenant's) and its tenant's own
(made in the console or at /v1/admin/templates), read per request from the key the control plane publishes
(moe_core.llm.published_templates): a tenant's template of a file template's name is that tenant's version of it
and wins. The request then carries the tenant template's models (ChatRequest.template_models), so the planner,
the experts and the judge call them without reading the control plane's table; a deleted template is gone with
the next request. Another tenant's templates are unknown (404).

A name that is not configured is a 404 `template_not_found` in the API's envelope; a model suffix and a
header naming different templates are a 400 (one request, one set of models); the tenant's templates cannot be
read (Redis down) is a 503 `templates_unavailable`, never another template's models.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis
from starlette.requests import Request

from moe_core.access.keystore import ApiKey
from moe_core.contracts import TemplateModels
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.inference.fleet import affinity_user as _affinity_user
from moe_core.llm.model_map import split_template
from moe_core.llm.modes import DEFAULT_MODE, MODES
from moe_core.llm.published_templates import PublishedTemplates, PublishedTemplatesError
from moe_core.llm.templates import ExpertTemplate, carried
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.settings import FleetSettings

TEMPLATE_HEADER = "x-moe-template"
Templates = Mapping[str, ExpertTemplate]


class EdgeTemplates(dict[str, ExpertTemplate]):
    """The file templates (what GET /v1/models lists), and per request the tenant's own (`choose`), read through
    the edge's Redis client (gateway.app's, shared with the limits, feedback and the exact cache)."""

    def __init__(self, templates: Mapping[str, ExpertTemplate], settings: FleetSettings, redis: Redis) -> None:
        super().__init__(templates)
        self.settings = settings
        self.published = PublishedTemplates(redis, settings.topic_namespace)

    async def of_tenant(self, tenant_id: str) -> dict[str, ExpertTemplate]:
        """The tenant's own templates; a 503 `templates_unavailable` when they cannot be read."""
        try:
            return await self.published.of_tenant(tenant_id)
        except PublishedTemplatesError as exc:
            raise OpenAIError(503, f"The tenant's expert templates cannot be read right now ({exc}); try again "
                                   "shortly.", "server_error", code="templates_unavailable") from None

    async def choose(self, tenant_id: str, from_model: str | None, from_header: str | None,
                     key_default: str | None) -> tuple[str | None, TemplateModels | None]:
        """The request's template name (checked against the file's and the tenant's own) and, for a tenant's
        own, its models as the request carries them. No name anywhere: no lookup."""
        if not (from_model or from_header or key_default):
            return None, None
        own = await self.of_tenant(tenant_id)
        name = choose(from_model, from_header, key_default, {**self, **own})  # the tenant's own wins
        if name is not None and name in own:
            return name, carried(own[name], self.settings.expert_tier_boundary_b)
        return name, None


def load(settings: FleetSettings, redis: Redis) -> EdgeTemplates:
    """The configured templates, checked against the inference servers (TemplateError: start-up fails)."""
    return EdgeTemplates(InferenceConfig.from_settings(settings).templates, settings, redis)


def model_ids(templates: Templates) -> list[str]:
    """The ids GET /v1/models lists for the templates (every mode takes the suffix too)."""
    return [f"{DEFAULT_MODE}@{name}" for name in templates]


def describe(model_id: str, templates: Templates) -> str:
    """A model id's description: its mode's, and its template's when it names one."""
    mode, name = split_template(model_id)
    if name is None or mode not in MODES:
        return MODES[model_id].description
    template = templates.get(name)
    text = f"{MODES[mode].description}; expert template '{name}'"
    return f"{text}: {template.description}" if template is not None and template.description else text


def header_template(request: Request) -> str | None:
    value = request.headers.get(TEMPLATE_HEADER, "").strip()
    return value or None


def not_found(name: str, templates: Templates, param: str) -> OpenAIError:
    known = ", ".join(sorted(templates)) or "none is configured"
    return OpenAIError(404, f"The expert template '{name}' does not exist (templates: {known})", param=param,
                       code="template_not_found")


def choose(from_model: str | None, from_header: str | None, key_default: str | None,
           templates: Templates) -> str | None:
    """The request's template name (checked), or None for the global assignments."""
    if from_model and from_header and from_model != from_header:
        raise OpenAIError(400, f"The model id names the template '{from_model}' and the {TEMPLATE_HEADER} header "
                               f"'{from_header}': give one", param="model", code="template_conflict")
    for name, param in ((from_model, "model"), (from_header, TEMPLATE_HEADER)):
        if name:
            if name not in templates:
                raise not_found(name, templates, param)
            return name
    if key_default is not None and key_default not in templates:  # the configuration dropped it since
        raise OpenAIError(404, f"This API key's default expert template '{key_default}' does not exist any "
                               "more; pick one per request or ask an admin to change the key",
                          param="model", code="template_not_found")
    return key_default


def affinity_user(user: str | None, key: ApiKey | None) -> str | None:
    """The request's sticky-server user: the client's `user`, else its key's principal
    (moe_core.llm.inference.fleet)."""
    return _affinity_user(user, key.principal_id if key is not None else None)
