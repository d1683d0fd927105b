"""chain: two or three tool calls in a row, each step's "$prev" arguments replaced by the previous step's
value (so "the weekday 100 days after 2024-01-01" is date_add then day_of_week). Every step is checked
against its own tool's JSON Schema; a failing step ends the chain with that step's error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from mcp_service.tools.base import ToolError, ToolOutput, wrong
from moe_core.contracts.tools import TOOL_SPECS

PREVIOUS = "$prev"
# The value one step hands to the next: the field of the tool's result that answers it.
VALUE_FIELD = {"calculate": "fraction", "unit_convert": "fraction", "date_add": "result", "base64_codec": "result",
               "hash_text": "hex", "number_base": "value", "roman_numeral": "number", "checksum": "hex",
               "decimal_finance": "result", "text_compare": "distance", "json_format": "result",
               "regex_replace": "result"}


def _value(tool: str, output: ToolOutput) -> str:
    if tool not in VALUE_FIELD or VALUE_FIELD[tool] not in output.result:
        raise wrong(f"{tool} cannot feed another step")
    data = output.result
    if VALUE_FIELD[tool] == "fraction" and "/" in str(data["fraction"]):
        if data.get("exact") and data.get("decimal") == data.get("result"):
            return str(data["decimal"])  # a terminating decimal: exact as it is
        return f"({data['fraction']})"  # exact as a fraction (for calculate)
    return str(data[VALUE_FIELD[tool]])


def _fill(value: Any, previous: str | None) -> Any:
    if isinstance(value, str) and PREVIOUS in value:
        if previous is None:
            raise wrong("the first step has no previous value")
        return value.replace(PREVIOUS, previous)
    return value


def run_chain(args: dict[str, Any], implementations: dict[str, Callable[[dict[str, Any]], ToolOutput]]) -> ToolOutput:
    previous: str | None = None
    texts: list[str] = []
    steps: list[dict[str, Any]] = []
    output: ToolOutput | None = None
    for number, step in enumerate(args["steps"], 1):
        tool = step["tool"]
        if tool == "chain" or tool not in implementations:
            raise wrong(f"step {number}: {tool!r} cannot be chained")
        call = {key: _fill(value, previous) for key, value in step.get("args", {}).items()}
        error = best_match(Draft202012Validator(TOOL_SPECS[tool].input_schema).iter_errors(call))
        if error is not None:
            raise wrong(f"step {number} ({tool}): {error.message[:200]}")
        try:
            output = implementations[tool](call)
        except ToolError as exc:
            raise ToolError(exc.code, f"step {number} ({tool}): {exc.message}") from None
        texts.append(output.text.rstrip("."))
        steps.append({"tool": tool, "args": call, "result": output.result})
        if number < len(args["steps"]):
            previous = _value(tool, output)
    assert output is not None
    return ToolOutput("; then ".join(texts) + ".", {"steps": steps, "result": output.result})
