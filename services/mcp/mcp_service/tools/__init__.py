"""The tool implementations, by contract name (libs/moe_core/contracts/tools.py holds the contracts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp_service.tools.base import ToolError, ToolOutput
from mcp_service.tools.bases import number_base, number_words
from mcp_service.tools.calc import calculate
from mcp_service.tools.chain import run_chain
from mcp_service.tools.checks import checksum
from mcp_service.tools.dates import calendar_facts, date_add, date_diff, day_of_week
from mcp_service.tools.edit import json_format, regex_replace, text_compare
from mcp_service.tools.finance import decimal_finance
from mcp_service.tools.graphs import graph_analyze
from mcp_service.tools.net import subnet_calc
from mcp_service.tools.numbers import gcd_lcm, prime_factorize, roman_numeral
from mcp_service.tools.probability import exact_probability
from mcp_service.tools.stats import statistics_calc
from mcp_service.tools.structured import json_query, structured_validate
from mcp_service.tools.symbolic import math_op, solve_equation
from mcp_service.tools.text import base64_codec, hash_text, regex_extract, text_analyze
from mcp_service.tools.units import unit_convert
from mcp_service.tools.zones import time_facts, timezone_convert

Implementation = Callable[[dict[str, Any]], ToolOutput]

IMPLEMENTATIONS: dict[str, Implementation] = {
    "calculate": calculate, "solve_equation": solve_equation, "math": math_op, "date_diff": date_diff,
    "date_add": date_add, "day_of_week": day_of_week, "calendar_facts": calendar_facts, "time_facts": time_facts,
    "timezone_convert": timezone_convert, "decimal_finance": decimal_finance,
    "exact_probability": exact_probability, "structured_validate": structured_validate,
    "unit_convert": unit_convert, "statistics_calc": statistics_calc, "hash_text": hash_text,
    "base64_codec": base64_codec, "regex_extract": regex_extract, "subnet_calc": subnet_calc,
    "text_analyze": text_analyze, "prime_factorize": prime_factorize, "gcd_lcm": gcd_lcm, "json_query": json_query,
    "roman_numeral": roman_numeral, "graph_analyze": graph_analyze, "number_base": number_base,
    "number_words": number_words, "checksum": checksum, "json_format": json_format, "regex_replace": regex_replace,
    "text_compare": text_compare,
}
IMPLEMENTATIONS["chain"] = lambda args: run_chain(args, IMPLEMENTATIONS)

__all__ = ["IMPLEMENTATIONS", "Implementation", "ToolError", "ToolOutput"]
