"""Client model ids -> our modes. Agent clients insist on their own model names (Claude Code sends
`claude-sonnet-4-5`, `claude-haiku-4-5`, …; OpenAI clients send `gpt-*`): a configurable map
(`MOE_MODEL_MAP`, JSON object, shell-style wildcards `*`, `?`, `[…]`) gives each a mode, so such
clients work unchanged. Our own mode ids always mean themselves; an exact key beats a pattern; among
patterns the first in the map's order wins. An id nothing matches stays unknown (404 model_not_found).

A model id may name an expert template after `@` (`moe-orchestrator@small`, `claude-sonnet-4-5@small`): `resolve`
splits it. The edge resolves every request's id here; the control plane checks a key's allowed models with the
same map (`ModelMapSettings`, MOE_MODEL_MAP, read by both), so a key cannot be given an id no request could use."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.llm.modes import DEFAULT_MODE, MODES

DEFAULT_MODEL_MAP: dict[str, str] = {
    "claude-*": DEFAULT_MODE,
    "gpt-*": DEFAULT_MODE,
    "o[0-9]*": DEFAULT_MODE,
    "codex-*": DEFAULT_MODE,
}


def check_model_map(value: Mapping[str, str]) -> dict[str, str]:
    """Every target must be a mode and every key non-empty (a typo fails at start-up, not per request)."""
    out: dict[str, str] = {}
    for key, mode in value.items():
        if not key.strip():
            raise ValueError("model_map: an empty client model id")
        if mode not in MODES:
            raise ValueError(f"model_map: {key!r} maps to {mode!r}, which is not a mode ({', '.join(MODES)})")
        out[key] = mode
    return out


def resolve_mode(model: str, model_map: Mapping[str, str]) -> str | None:
    """The mode a client's model id selects, or None when the id is unknown."""
    if model in MODES:
        return model
    if model in model_map:
        return model_map[model]
    return next((mode for pattern, mode in model_map.items() if fnmatchcase(model, pattern)), None)


def split_template(model: str) -> tuple[str, str | None]:
    """`moe-orchestrator-code@small` -> ("moe-orchestrator-code", "small"); no suffix -> (model, None)."""
    base, at, name = model.rpartition("@")
    if not at or not base or not name:
        return model, None
    return base, name


def resolve(model: str, model_map: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    """(mode, the model id without the template, the template named in it) or None (an unknown id). An id
    that is itself a mode or an exact model-map key is taken whole; else an `@<name>` suffix is a template."""
    if model in MODES or model in model_map:
        return resolve_mode(model, model_map) or model, model, None
    base, name = split_template(model)
    mode = resolve_mode(base, model_map)
    return (mode, base, name) if mode is not None else None


class ModelMapSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    model_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_MODEL_MAP),
        description="Client model ids (shell wildcards) -> modes, JSON, e.g. "
                    '{"claude-*haiku*": "moe-orchestrator-concise", "claude-*": "moe-orchestrator"}',
    )

    @field_validator("model_map")
    @classmethod
    def _model_map(cls, value: dict[str, str]) -> dict[str, str]:
        return check_model_map(value)
