"""The precision tools the planner may route to: names, one-line descriptions and argument hints for the
planner model, and argument validation. Read from the shared contracts (moe_core.contracts.tools), the
same catalogue the mcp service serves, filtered by the same MOE_TOOLS_ENABLED / MOE_TOOLS_DISABLED."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from moe_core.contracts.tools import PRECISION_CATEGORY, ToolSpec, select_tools
from moe_core.runtime.settings import FleetSettings

# Questions a tool could help with: arithmetic, percentages, quantities with units, calendar dates, and the
# words of calculation, time zones and data formats. A bare number ("in the year 1043") is no cue.
_UNITS = (r"km|m|cm|mm|kg|g|mg|lbs?|mi|miles?|ft|feet|foot|in|inch(?:es)?|yards?|°\s*[cfk]|celsius|fahrenheit|"
          r"kelvin|l|ml|litres?|liters?|gal|gallons?|mph|km/h|kph|m/s|knots?|kb|mb|gb|tb|bytes?|bits?|"
          r"hours?|minutes?|seconds?|days?|weeks?|months?|years?|ounces?|oz|pounds?|tons?|tonnes?|"
          r"metres?|meters?|kilometres?|kilometers?|grams?|kilograms?|watts?|kw|kwh|joules?|calories?|kcal")
_MONTHS = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|" \
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_CUE = re.compile(
    r"\d\s*[-+*/^\u00d7\u00f7]\s*\(?\d|\d\s*%|\d+(?:[.,]\d+)*\s*(?:" + _UNITS + r")\b|"
    r"\b\d{4}-\d{2}-\d{2}\b|\b(?:" + _MONTHS + r")\.?\s+\d{1,2}\b|\b\d{1,2}\s+(?:" + _MONTHS + r")\b|"
    r"\b(?:calculat|comput|convert|solve|equation|derivative|differentiat|integral|integrat|limit of|simplif|"
    r"percent|probabilit|odds|dice|statistic|mean of|median|average|variance|standard deviation|sum of|"
    r"hash|sha-?\d|md5|base64|encod|decod|regex|regular expression|json|yaml|xml|csv|subnet|cidr|netmask|"
    r"ip address|ipv[46]|prime|factori[sz]|gcd|lcm|greatest common|least common|divisor|roman numeral|"
    r"weekday|day of the week|time ?zone|utc|gmt|daylight saving|leap year|interest rate|compound interest|"
    r"loan|mortgage|vat\b|sales tax|rounding|decimal places|fraction|eulerian|vertices|word count"
    r"checksum|crc-?(?:16|32)?|adler|luhn|iban|hexadecimal|\bhex\b|binary|octal|\bbase \d+|roman|"
    r"levenshtein|edit distance|in words|spelled out|"
    r"how many (?:days|hours|minutes|seconds|weeks|months|years)|days (?:between|until|since))",
    re.IGNORECASE)


@dataclass
class ToolCatalogue:
    specs: dict[str, ToolSpec]
    _validators: dict[str, Draft202012Validator] = field(init=False, default_factory=dict)
    _subsets: dict[tuple[str, ...], ToolCatalogue] = field(init=False, default_factory=dict)
    # what callers work out once per catalogue from a key of theirs (planner.egress_plan: per egress decision)
    memo: dict[Any, Any] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validators = {name: Draft202012Validator(spec.input_schema) for name, spec in self.specs.items()}

    @classmethod
    def from_settings(cls, settings: FleetSettings) -> ToolCatalogue:
        return cls(select_tools(settings.tools_enabled, settings.tools_disabled))

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def only(self, allowed: Callable[[str], bool]) -> ToolCatalogue:
        """The catalogue of the tools `allowed` takes (itself when it takes every one; each subset built once)."""
        keep = tuple(name for name in self.specs if allowed(name))
        if len(keep) == len(self.specs):
            return self
        if keep not in self._subsets:
            self._subsets[keep] = ToolCatalogue({name: self.specs[name] for name in keep})
        return self._subsets[keep]

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
