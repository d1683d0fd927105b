"""Client model ids -> our modes. Agent clients insist on their own model names (Claude Code sends
`claude-sonnet-4-5`, `claude-haiku-4-5`, …; OpenAI clients send `gpt-*`): a configurable map
(`MOE_MODEL_MAP`, JSON object, shell-style wildcards `*`, `?`, `[…]`) gives each a mode, so such
clients work unchanged. Our own mode ids always mean themselves; an exact key beats a pattern; among
patterns the first in the map's order wins. An id nothing matches stays unknown (404 model_not_found)."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from moe_core.modes import DEFAULT_MODE, MODES

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
