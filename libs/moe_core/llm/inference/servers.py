"""An inference server and a model on it (INFERENCE_SERVERS entries, MODEL_ASSIGNMENTS references): the data both
the configuration (config) and the expert templates (moe_core.llm.templates) build on."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

# An expert's call to an Ollama server unloads its model afterwards (keep_alive 0) when the server says so; the
# original always does (docs/seed-defaults.md: its row in moe_core.runtime.settings.SEED_DEFAULTS says why not here).
UNLOAD_AFTER_EXPERT = False


class InferenceServer(BaseModel):
    name: str = Field(min_length=1)
    url: str = Field(description="Base URL, e.g. http://127.0.0.1:8081 (a trailing /v1 is accepted)")
    api: Literal["openai", "ollama"] = "openai"
    models: list[str] = Field(default_factory=list)
    api_key: str | None = None
    timeout_s: float = Field(default=900.0, gt=0, description="The longest a call to this server may take (each "
                             "call is bounded by its role's timeout and its request's deadline as well): the "
                             "original's 900 s")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    vision_models: list[str] = Field(default_factory=list, description="Models on this server that accept "
                                     'images (OpenAI image_url parts); ["*"]: every model it serves')
    # The original's CLUSTER_HARDWARE (GPU nodes, their GPU-class priority) as fields of each server.
    gpu_count: int = Field(default=1, ge=1, le=1024, description="GPUs behind the server: a floating model's "
                           "load score is the server's running calls per GPU")
    priority: int = Field(default=0, ge=-1000, le=1000, description="GPU-class priority: among servers equally "
                          "placed (health, affinity, warm model, load per GPU), the higher is tried first")
    region: str = Field(default="", max_length=64, description="Where the server runs (e.g. de-fra): named in every "
                        "egress record (policy/opa/egress.rego)")
    sovereignty: Literal["", "on_premises", "sovereign_cloud", "public"] = Field(
        default="", description="Who runs it: on_premises (our own), sovereign_cloud (under the operator's "
        "jurisdiction) or public (a foreign provider); unset counts as not sovereign. The egress policy decides "
        "by it which data classes may reach the server")
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
