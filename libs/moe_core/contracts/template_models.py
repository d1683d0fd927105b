"""The models of a tenant's expert template as a message carries them (Envelope.template_models): the edge
resolves the template a request names (moe_core.llm.tenant_templates) and every stage calls these models, without
reading the control plane's table. A file template (policy/templates.yaml) is not carried: every stage has it."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field


class CarriedModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    server: str | None = Field(default=None, max_length=200, description="The server it must run on; unset: "
                               "any server that serves the model")
    tier: int = Field(default=1, ge=1, le=2, description="1: asked first; 2: only when no tier-1 answer is "
                      "confident (stated, or from the model's size at the edge)")


class TemplateModels(BaseModel):
    """Per expert category an ordered list, plus the planner's, the judge's and the thinking step's (unset: the
    template has none; the global assignment applies, as for a file template)."""

    model_config = ConfigDict(extra="ignore")

    source: str = Field(default="tenant", description="Where the edge found it: tenant (the tenant's own)")
    experts: dict[str, list[CarriedModel]] = Field(default_factory=dict)
    planner: list[CarriedModel] | None = None
    judge: list[CarriedModel] | None = None
    thinking: list[CarriedModel] | None = None
    ensemble: bool = False

    def digest(self) -> str:
        """sha256 of the models as canonical JSON: the caches scope a template's answers and plans by it (an
        edited template, or another tenant's of the same name, never gets this one's answers)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]
