"""Inference servers and model assignments, as data (INFERENCE_SERVERS, MODEL_ASSIGNMENTS, EXPERT_TEMPLATES)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, TypeAdapter, field_validator, model_validator

from moe_core.inference.errors import InferenceError
from moe_core.settings import FleetSettings

if TYPE_CHECKING:
    from moe_core.templates import ExpertTemplate


# An expert's call to an Ollama server unloads its model afterwards (keep_alive 0) when the server says so; the
# original always does (docs/seed-defaults.md: its row in moe_core.settings.SEED_DEFAULTS says why not here).
UNLOAD_AFTER_EXPERT = False


class InferenceServer(BaseModel):
    name: str = Field(min_length=1)
    url: str = Field(description="Base URL, e.g. http://127.0.0.1:8081 (a trailing /v1 is accepted)")
    api: Literal["openai", "ollama"] = "openai"
    models: list[str] = Field(default_factory=list)
    api_key: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    vision_models: list[str] = Field(default_factory=list, description="Models on this server that accept "
                                     'images (OpenAI image_url parts); ["*"]: every model it serves')
    # The original's CLUSTER_HARDWARE (GPU nodes, their GPU-class priority) as fields of each server.
    gpu_count: int = Field(default=1, ge=1, le=1024, description="GPUs behind the server: a floating model's "
                           "load score is the server's running calls per GPU")
    priority: int = Field(default=0, ge=-1000, le=1000, description="GPU-class priority: among servers equally "
                          "placed (health, affinity, warm model, load per GPU), the higher is tried first")
    unload_after_expert: bool = Field(default=UNLOAD_AFTER_EXPERT, description="Ollama only: an expert's call "
                                      "asks the server to unload the model once it has answered (keep_alive 0), "
                                      "freeing VRAM for the judge (the original's unload after each expert)")

    @model_validator(mode="after")
    def _unload_needs_ollama(self) -> InferenceServer:
        if self.unload_after_expert and self.api != "ollama":
            raise ValueError(f"server {self.name!r}: unload_after_expert needs api 'ollama' (keep_alive is "
                             "Ollama's); an OpenAI-compatible server keeps its own models")
        return self

    def sees(self, model: str) -> bool:
        """Whether `model` on this server takes images."""
        return "*" in self.vision_models or model in self.vision_models

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.rstrip("/")
        return value[:-3] if value.endswith("/v1") else value


# A parameter count in a model's name: "phi4:14b", "qwen2.5-72b-instruct", "Llama-3.1-8B", "smollm2-135m",
# "mixtral:8x7b" (8 x 7); "qwen3-30b-a3b" is 30 (the active "a3b" is not preceded by a separator).
_SIZE = re.compile(r"(?<![a-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?![a-z0-9])", re.IGNORECASE)


def parameters_b(model: str) -> float | None:
    """The model's size in billions of parameters as its name states it; None when the name does not."""
    found = _SIZE.search(model)
    if found is None:
        return None
    experts, size, unit = found.groups()
    value = float(size) * (int(experts) if experts else 1)
    return value / 1000 if unit.lower() == "m" else value


def tier_of(model: str, boundary_b: float) -> int:
    """The original's two tiers by size: up to `boundary_b` billion parameters tier 1, above tier 2; a name
    that states no size is tier 1."""
    size = parameters_b(model)
    return 2 if size is not None and size > boundary_b else 1


class ModelRef(BaseModel):
    """`model` (floats to any server that has it) or `model@server` (that server only).

    In EXPERT_TEMPLATES an entry may also be an object `{"model", "endpoint" or "server", "tier"}`:
    tier 1 models run first, tier 2 only when no tier-1 answer is high confidence. Without a `tier`, the
    model's size decides (as in the original: up to EXPERT_TIER_BOUNDARY_B billion parameters, 20, tier 1;
    `InferenceConfig` resolves it)."""

    model: str = Field(min_length=1)
    server: str | None = Field(default=None, validation_alias=AliasChoices("server", "endpoint"))
    tier: int = Field(default=1, ge=1, le=2)

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        model, _, server = text.partition("@")
        if not model:
            raise ValueError(f"empty model in reference {text!r}")
        return cls(model=model, server=server or None)

    @classmethod
    def of(cls, entry: str | dict[str, Any]) -> ModelRef:
        return cls.parse(entry) if isinstance(entry, str) else cls.model_validate(entry)

    def __str__(self) -> str:
        return f"{self.model}@{self.server}" if self.server else self.model

    def sized(self, boundary_b: float) -> ModelRef:
        """This ref with its tier: the one it states, else the one its model's size gives."""
        if "tier" in self.model_fields_set:
            return self
        return self.model_copy(update={"tier": tier_of(self.model, boundary_b)})


_refs = TypeAdapter(dict[str, list[str | dict[str, Any]]])


class InferenceConfig(BaseModel):
    servers: list[InferenceServer]
    roles: dict[str, list[ModelRef]] = Field(default_factory=dict)
    experts: dict[str, list[ModelRef]] = Field(default_factory=dict)
    templates: dict[str, Any] = Field(default_factory=dict, description="Named expert templates "
                                      "(moe_core.templates.ExpertTemplate), selected per request")
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
            servers = TypeAdapter(list[InferenceServer]).validate_json(settings.inference_servers)
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
        from moe_core.templates import load_templates  # (it builds on this module's ModelRef)

        templates = load_templates(settings.expert_templates_file, servers, settings.named_templates)
        return cls(servers=servers, roles=roles, experts=experts, templates=templates,
                   tier_boundary_b=settings.expert_tier_boundary_b)

    def template(self, name: str | ExpertTemplate | None) -> ExpertTemplate | None:
        """The named template (None without a name); InferenceError when this service does not know it. A
        template itself (a tenant's, carried by the message: moe_core.templates.of_message) is taken as it is."""
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
