"""Small YAML writers for the generated deployment sections: scalars that read back as the same value, and an
env value's trailing comment (moe_core.stage.deployment) kept beside it."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

_PLAIN = re.compile(r"[A-Za-z0-9_./$@-][^#]*")


def scalar(value: Any) -> str:
    """A YAML scalar that loads back as `value` (strings stay strings: "1", "false", "mcp:*" are quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and _PLAIN.fullmatch(text) and ": " not in text and not text.endswith(":"):
        try:
            if yaml.safe_load(f"k: {text}") == {"k": text}:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text)


def flow(value: Any) -> str:
    """A value in flow style ({a: 1}, [x, y]) or a scalar."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, str) and any(c in value for c in "{}[],"):
        return json.dumps(value)  # flow indicators inside a flow collection
    return scalar(value)


def commented(value: str) -> tuple[str, str]:
    """(value, comment) of an env value written as "value  # comment"."""
    text, _, comment = value.partition("  # ")
    return text, comment


def env_lines(env: dict[str, str], indent: str) -> list[str]:
    out = []
    for key, raw in env.items():
        value, comment = commented(raw)
        out.append(f"{indent}{key}: {scalar(value)}" + (f"  # {comment}" if comment else ""))
    return out
