"""Named expert templates (policy as code, `policy/templates.yaml`, or the file MOE_EXPERT_TEMPLATES_FILE
names, or that file's text in MOE_NAMED_TEMPLATES, as Helm and compose pass it): each template is a set of
models — per expert category an ordered list, plus the planner's and the judge's — that a request selects
(`moe-orchestrator@<name>`, the `X-MOE-Template` header, or its API key's default template). A request
without a template uses the global assignments (EXPERT_TEMPLATES, MODEL_ASSIGNMENTS).

The file is loaded and checked when a service starts (every stage that calls models, and the gateway):
an unknown category, an empty model list, an unknown server or a model no configured server serves stops
the start with a message naming the template and the entry. What a template leaves out falls back: an
expert category to the template's `general` list, then to the global assignment; `thinking` to the
template's `judge`; a role to the global role.

A tenant's own templates (moe_core.llm.tenant_templates) are not in the file: the edge resolves them and the request
carries their models (Envelope.template_models); `of_message` gives a stage what a message runs with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from moe_core.contracts import Envelope, TemplateModels
from moe_core.contracts.experts import EXPERT_CATEGORIES
from moe_core.llm.inference.servers import InferenceServer, ModelRef

DEFAULT_FILE = Path("policy/templates.yaml")
REPO = Path(__file__).resolve().parents[3]
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ROLES = ("planner", "judge", "thinking")


class TemplateError(ValueError):
    """The templates file is missing, not valid YAML, or names something that does not exist."""


def _refs(value: Any) -> Any:
    if isinstance(value, list):
        return [ModelRef.of(entry) if isinstance(entry, str) else entry for entry in value]
    return value


class ExpertTemplate(BaseModel):
    """One named set of models. Lists are in order of preference (the first that answers; tiers as in
    EXPERT_TEMPLATES)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=500)
    experts: dict[str, list[ModelRef]] = Field(default_factory=dict, description="category -> models")
    planner: list[ModelRef] | None = None
    judge: list[ModelRef] | None = None
    thinking: list[ModelRef] | None = Field(default=None, description="The merger's thinking step; else judge")
    ensemble: bool = Field(default=False, description="Ask tier 1 and tier 2 side by side (the original's forced "
                           "ensemble) instead of tier 2 only when tier 1 is not confident")

    @field_validator("experts", mode="before")
    @classmethod
    def _expert_refs(cls, value: Any) -> Any:
        return {k: _refs(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("planner", "judge", "thinking", mode="before")
    @classmethod
    def _role_refs(cls, value: Any) -> Any:
        return _refs(value)

    def role(self, name: str) -> list[ModelRef] | None:
        return getattr(self, name) if name in ROLES else None

    def lists(self) -> dict[str, list[ModelRef]]:
        """Every model list, by where it is in the file (experts.<category>, planner, judge, thinking)."""
        named = {f"experts.{category}": refs for category, refs in self.experts.items()}
        return {**named, **{role: refs for role in ROLES if (refs := self.role(role)) is not None}}


class TemplateFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    templates: dict[str, ExpertTemplate] = Field(default_factory=dict)


def problems(name: str, template: ExpertTemplate, servers: list[InferenceServer]) -> list[str]:
    """What is wrong with one template against the configured servers ([] when nothing)."""
    found: list[str] = []
    if not NAME.match(name):
        found.append(f"template {name!r}: a name is lower-case letters, digits, '.', '_' or '-' (at most 63)")
    where = f"template {name!r}"
    if not template.lists():
        found.append(f"{where}: names no models (give experts, planner or judge)")
    for category in template.experts:
        if category not in EXPERT_CATEGORIES:
            found.append(f"{where}: experts.{category}: unknown category {category!r} "
                         f"(categories: {', '.join(EXPERT_CATEGORIES)})")
    names = [s.name for s in servers]
    for place, refs in template.lists().items():
        if not refs:
            found.append(f"{where}: {place}: the model list is empty")
        for ref in refs:
            if ref.server is not None and ref.server not in names:
                found.append(f"{where}: {place}: {ref}: unknown server {ref.server!r} (servers: {', '.join(names)})")
            elif ref.server is None and not any(not s.models or ref.model in s.models for s in servers):
                found.append(f"{where}: {place}: no configured server serves the model {ref.model!r}")
    return found


def resolve_path(raw: str) -> Path | None:
    """The templates file: a relative path is looked up in the working directory, then the repository.
    None: no templates (the setting is empty, or the default file is absent)."""
    if not raw.strip():
        return None
    path = Path(raw)
    if not path.is_absolute() and not path.exists() and (REPO / path).exists():
        path = REPO / path
    if not path.exists() and Path(raw) == DEFAULT_FILE:
        return None
    return path


def load_templates(raw_path: str, servers: list[InferenceServer], inline: str = "") -> dict[str, ExpertTemplate]:
    """The templates of the file `raw_path` names (or of `inline`, the file's text given in the environment,
    which wins), checked against `servers`; TemplateError says why not."""
    path = Path("MOE_NAMED_TEMPLATES") if inline.strip() else resolve_path(raw_path)
    if path is None:
        return {}
    try:
        text = inline if inline.strip() else path.read_text()
    except OSError as exc:
        raise TemplateError(f"expert templates {path}: cannot read the file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
        parsed = TemplateFile.model_validate(data if isinstance(data, dict) else {"version": None})
    except yaml.YAMLError as exc:
        raise TemplateError(f"expert templates {path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TemplateError(f"expert templates {path}: {details}") from None
    found = [p for name, template in parsed.templates.items() for p in problems(name, template, servers)]
    if found:
        raise TemplateError(f"expert templates {path}: " + "; ".join(found))
    return parsed.templates


def carried(template: ExpertTemplate, tier_boundary_b: float) -> TemplateModels:
    """The template as a message carries it: every entry with its tier (stated, else by the model's size)."""
    def refs(values: list[ModelRef] | None) -> list[dict[str, Any]] | None:
        if values is None:
            return None
        return [{"model": r.model, "server": r.server, "tier": r.sized(tier_boundary_b).tier} for r in values]

    return TemplateModels.model_validate({
        "experts": {c: refs(v) for c, v in template.experts.items()}, "planner": refs(template.planner),
        "judge": refs(template.judge), "thinking": refs(template.thinking), "ensemble": template.ensemble})


def from_carried(models: TemplateModels) -> ExpertTemplate:
    """The carried models as a template (InferenceConfig.for_role/for_expert take it like a name)."""
    def refs(values: list[Any] | None) -> list[ModelRef] | None:
        return None if values is None else [ModelRef(model=r.model, server=r.server, tier=r.tier) for r in values]

    return ExpertTemplate(experts={c: refs(v) or [] for c, v in models.experts.items()}, ensemble=models.ensemble,
                          planner=refs(models.planner), judge=refs(models.judge), thinking=refs(models.thinking))


def of_message(message: Envelope) -> str | ExpertTemplate | None:
    """What a message runs with: the models it carries (a tenant's template, resolved at the edge), else its
    template's name (a file template every stage has), else None (the global assignments)."""
    if message.template_models is not None:
        return from_carried(message.template_models)
    return message.template
