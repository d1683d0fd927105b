"""The precision tools the planner may route to: names, one-line descriptions and argument hints for the
planner model, and argument validation. Read from the shared contracts (moe_core.contracts.tools), the
same catalogue the mcp service serves, filtered by the same MOE_TOOLS_ENABLED / MOE_TOOLS_DISABLED."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from moe_core.contracts.tools import PRECISION_CATEGORY, ToolSpec, select_tools
from moe_core.settings import FleetSettings

# Questions any tool could help with: digits or the words of calculation, dates, units and data formats.
_CUE = re.compile(
    r"\d|\b(?:calculat|comput|convert|solve|equation|deriv|integra|limit|simplif|percent|probabilit|odds|"
    r"dice|statistic|mean|median|average|variance|deviation|sum|total|hash|sha|md5|base64|encod|decod|"
    r"regex|regular expression|json|yaml|xml|csv|subnet|cidr|netmask|ip|ipv|prime|factor|gcd|lcm|divisor|"
    r"multiple|roman|date|day|week|month|year|hour|minute|second|time ?zone|utc|gmt|dst|weekday|calendar|"
    r"leap|unit|met(?:er|re)|mile|km|kilo|gram|pound|ounce|inch|feet|foot|gallon|litre|liter|celsius|"
    r"fahrenheit|kelvin|interest|loan|mortgage|rate|tax|round|decimal|fraction|graph|euler|vertex|edge|"
    r"word count|characters|how many|how much|how long|how old|twice|half|double|triple|dozen|hundred|"
    r"thousand|million|billion)",
    re.IGNORECASE)


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

    @staticmethod
    def may_help(question: str) -> bool:
        """Whether any precision tool could compute part of the question (numbers, dates, units, data
        formats, ...). Without such a cue the planner model is not shown the catalogue (~870 tokens)."""
        return bool(_CUE.search(question))

    def prompt(self) -> str:
        """The catalogue as the planner model sees it: one line per tool with example arguments."""
        lines = [f"- {s.name} {s.hint}: {s.brief}" for s in self.specs.values()]
        first = next(iter(self.specs.values()))
        example = json.dumps({"kind": "tool", "category": PRECISION_CATEGORY, "tool": first.name,
                              "args": json.loads(first.hint), "instruction": first.brief})
        return ("For a part that needs an exact result use a tool task, e.g. "
                f"{example}. Tools (name, example args: use):\n" + "\n".join(lines))
