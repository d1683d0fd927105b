"""Inference servers and model assignments, as data (INFERENCE_SERVERS, MODEL_ASSIGNMENTS, EXPERT_TEMPLATES)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from moe_core.llm.inference.live import FleetOverrides, merged_servers
from moe_core.llm.inference.servers import InferenceServer, ModelRef
from moe_core.runtime.inference_errors import InferenceError
from moe_core.runtime.settings import FleetSettings

if TYPE_CHECKING:
    from moe_core.llm.templates import ExpertTemplate

_refs = TypeAdapter(dict[str, list[str | dict[str, Any]]])


def _unloading(servers: Any, unload: bool) -> Any:
    """MOE_UNLOAD_AFTER_EXPERT: the default of every Ollama server that does not set `unload_after_expert`."""
    if not unload or not isinstance(servers, list):
        return servers
    return [{**s, "unload_after_expert": True} if isinstance(s, dict) and s.get("api") == "ollama"
            and "unload_after_expert" not in s else s for s in servers]


class InferenceConfig(BaseModel):
    servers: list[InferenceServer]
    roles: dict[str, list[ModelRef]] = Field(default_factory=dict)
    experts: dict[str, list[ModelRef]] = Field(default_factory=dict)
    templates: dict[str, Any] = Field(default_factory=dict, description="Named expert templates "
                                      "(moe_core.llm.templates.ExpertTemplate), selected per request")
    tier_boundary_b: float = Field(default=20.0, gt=0, description="Expert entries without a tier: up to this "
                                   "many billion parameters tier 1, above tier 2")

    @model_validator(mode="after")
    def _tiers(self) -> InferenceConfig:
        """Every expert entry (global and in the named templates) with its tier."""
        self.experts = {c: [r.sized(self.tier_boundary_b) for r in refs] for c, refs in self.experts.items()}
        for template in self.templates.values():
            template.experts = {c: [r.sized(self.tier_boundary_b) for r in refs]
                                for c, refs in template.experts.items()}
        return self

    @classmethod
    def from_settings(cls, settings: FleetSettings) -> InferenceConfig:
        if settings.inference_servers.strip():
            servers = TypeAdapter(list[InferenceServer]).validate_python(
                _unloading(json.loads(settings.inference_servers), settings.unload_after_expert))
        else:
            servers = [
                InferenceServer(name="local", url=settings.local_llm_url, models=[settings.local_llm_model],
                                timeout_s=settings.local_llm_timeout_s)
            ]
        if not servers:
            raise ValueError("INFERENCE_SERVERS is an empty list")
        default = [ModelRef(model=servers[0].models[0], server=servers[0].name)] if servers[0].models else []
        roles = _parse_refs(settings.model_assignments)
        roles.setdefault("default", default)
        experts = _parse_refs(settings.expert_templates)
        from moe_core.llm.templates import load_templates  # (it builds on this module's ModelRef)

        templates = load_templates(settings.expert_templates_file, servers, settings.named_templates)
        return cls(servers=servers, roles=roles, experts=experts, templates=templates,
                   tier_boundary_b=settings.expert_tier_boundary_b)

    def with_overrides(self, over: FleetOverrides) -> InferenceConfig:
        """This (the environment's) configuration with the console's overlay (moe_core.llm.inference.live): servers
        replaced, removed or added by name, a role's or a category's models replaced; every tier resolved again."""
        servers = merged_servers(self.servers, over)
        if not servers:
            raise ValueError("the overlay leaves no inference server")
        return InferenceConfig(servers=servers, roles={**self.roles, **over.roles},
                               experts={**self.experts, **over.experts}, templates=self.templates,
                               tier_boundary_b=self.tier_boundary_b)

    def template(self, name: str | ExpertTemplate | None) -> ExpertTemplate | None:
        """The named template (None without a name); InferenceError when this service does not know it. A
        template itself (a tenant's, carried by the message: moe_core.llm.templates.of_message) is taken as it is."""
        if not name:
            return None
        if not isinstance(name, str):
            return name
        if name not in self.templates:
            raise InferenceError("unknown_template", f"no expert template {name!r} is configured here "
                                 f"(known: {', '.join(self.templates) or 'none'})")
        return self.templates[name]

    def for_role(self, role: str, template: str | ExpertTemplate | None = None,
                 fallback: str | None = None) -> list[ModelRef]:
        """The role's models: the template's (role, then fallback), else the global role, fallback, default."""
        chain = [role] + ([fallback] if fallback else [])
        chosen = self.template(template)
        for name in chain:
            if chosen is not None and (refs := chosen.role(name)):
                return list(refs)
        return next((self.roles[name] for name in chain if self.roles.get(name)), self.roles["default"])

    def for_expert(self, category: str, template: str | ExpertTemplate | None = None) -> list[ModelRef]:
        """A category's models: the template's (category, then general), else the global assignment."""
        chosen = self.template(template)
        if chosen is not None and (refs := chosen.experts.get(category) or chosen.experts.get("general")):
            return list(refs)
        return self.experts.get(category) or self.experts.get("general") or self.for_role("default")

    def vision_refs(self, template: str | ExpertTemplate | None = None) -> list[ModelRef]:
        """The `vision` expert's models, each pinned to a server that takes images for it (`vision_models`);
        when none of the template's models can, every model a server declares for images. Empty: this
        configuration cannot look at an image."""
        refs = [ModelRef(model=ref.model, server=server.name, tier=ref.sized(self.tier_boundary_b).tier)
                for ref in self.for_expert("vision", template) for server in self.candidates(ref)
                if server.sees(ref.model)]
        return refs or [ModelRef(model=model, server=server.name)
                        for server in self.servers for model in server.vision_models if model != "*"]

    def candidates(self, ref: ModelRef) -> list[InferenceServer]:
        """Servers that may serve `ref`, in configuration order."""
        if ref.server:
            return [s for s in self.servers if s.name == ref.server]
        return [s for s in self.servers if not s.models or ref.model in s.models]


def _parse_refs(raw: str) -> dict[str, list[ModelRef]]:
    if not raw.strip():
        return {}
    data = _refs.validate_python(json.loads(raw))
    return {key: [ModelRef.of(r) for r in refs] for key, refs in data.items()}
