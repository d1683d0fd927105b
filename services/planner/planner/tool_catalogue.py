"""The precision tools the planner may route to: names, one-line descriptions and argument hints for the
planner model, and argument validation. Read from the shared contracts (moe_core.contracts.tools), the
same catalogue the mcp service serves, filtered by the same MOE_TOOLS_ENABLED / MOE_TOOLS_DISABLED."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from moe_core.contracts.tools import PRECISION_CATEGORY, ToolSpec, select_tools
from moe_core.settings import FleetSettings


@dataclass
class ToolCatalogue:
    specs: dict[str, ToolSpec]
    _validators: dict[str, Draft202012Validator] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._validators = {name: Draft202012Validator(spec.input_schema) for name, spec in self.specs.items()}

    @classmethod
    def from_settings(cls, settings: FleetSettings) -> ToolCatalogue:
        return cls(select_tools(settings.tools_enabled, settings.tools_disabled))

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def valid(self, tool: str, args: Any) -> bool:
        """True when `tool` is offered and `args` satisfy its input schema."""
        if tool not in self._validators or not isinstance(args, dict):
            return False
        try:
            return self._validators[tool].is_valid(args)
        except RecursionError:
            return False

    def prompt(self) -> str:
        """The catalogue as the planner model sees it: one line per tool with example arguments."""
        lines = [f"- {s.name} {s.hint}: {s.brief}" for s in self.specs.values()]
        first = next(iter(self.specs.values()))
        example = json.dumps({"kind": "tool", "category": PRECISION_CATEGORY, "tool": first.name,
                              "args": json.loads(first.hint), "instruction": first.brief})
        return ("For a part that needs an exact result use a tool task, e.g. "
                f"{example}. Tools (name, example args: use):\n" + "\n".join(lines))
