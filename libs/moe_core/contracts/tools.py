"""The precision tools' contracts: one catalogue read by the mcp service (which implements the tools)
and the planner (which routes questions to them). Each tool has a JSON input schema, a version and the
sha256 of its schema; a change of a tool's arguments is a new version."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

ToolErrorCode = Literal[
    "unknown_tool", "wrong_arguments", "input_schema_invalid", "tool_execution_error", "result_too_large", "timeout",
    "tool_disabled", "data_class_forbidden",
]
ERROR_CODES: tuple[ToolErrorCode, ...] = (
    "unknown_tool", "wrong_arguments", "input_schema_invalid", "tool_execution_error", "result_too_large", "timeout",
    "tool_disabled", "data_class_forbidden",
)
PRECISION_CATEGORY = "precision"  # the category of every tool task (plans, results, metrics)

MAX_EXPRESSION = 500
MAX_TEXT = 200_000
NUMBER_TEXT = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,4})?\s*$"
DATE_TEXT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
TIMEZONE = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$"}
ROUNDING = ["half_up", "half_even", "half_down", "up", "down", "ceiling", "floor", "05up"]
HASHES = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
          "blake2b", "blake2s"]
CHECKSUMS = ["crc32", "crc16_ccitt", "adler32", "luhn", "mod97"]
CHAINABLE = ["calculate", "unit_convert", "date_add", "day_of_week", "base64_codec", "hash_text", "number_base",
             "roman_numeral", "prime_factorize", "checksum", "decimal_finance", "number_words", "text_analyze",
             "json_format", "regex_replace", "calendar_facts"]


def _str(max_length: int = MAX_EXPRESSION, min_length: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **extra}


def _int(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


NUMBER = {"type": ["number", "string"], "pattern": NUMBER_TEXT, "maxLength": 64,
          "description": "a number; as a string it is taken exactly (\"0.1\")"}
PROBABILITY = {"type": ["number", "string"], "pattern": r"^\s*(\d+(\.\d+)?|\.\d+)(\s*/\s*\d+)?\s*$", "maxLength": 64,
               "minimum": 0, "maximum": 1, "description": "0..1 as a number, a decimal string or a fraction \"1/6\""}
DATE = _str(40, pattern=DATE_TEXT, description="ISO date or date-time, e.g. 2024-02-01 or 2024-02-01T13:30")
NODE = {"type": ["string", "integer"], "maxLength": 100}


def _object(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False, **extra}


def _requires(by_operation: dict[str, list[str]]) -> list[dict[str, Any]]:
    """JSON Schema for "operation X needs fields Y" (one if/then per operation)."""
    return [{"if": {"properties": {"operation": {"const": op}}, "required": ["operation"]},
             "then": {"required": fields}} for op, fields in by_operation.items() if fields]


@dataclass(frozen=True)
class ToolSpec:
    """One tool's contract: what the planner model sees (description, hint) and what callers must send."""

    name: str
    description: str
    hint: str  # example arguments, shown to the planner model
    input_schema: dict[str, Any] = field(hash=False)
    version: str = "1.0.0"

    @property
    def brief(self) -> str:
        """The planner model's one-line description (its prompt stays short)."""
        return BRIEFS.get(self.name, self.description)

    @cached_property
    def schema_sha256(self) -> str:
        canonical = json.dumps(self.input_schema, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def contract(self) -> dict[str, Any]:
        return {"id": self.name, "version": self.version, "schema_sha256": self.schema_sha256,
                "description": self.description, "input_schema": self.input_schema}


_SPECS = [
    ToolSpec("calculate", "Exact arithmetic: + - * / // % ** (or ^), parentheses, sqrt, exp, ln, log, log10, "
             "trig, factorial, abs, round, floor, ceil, min, max, gcd, pi, e; '15% of 80' is understood",
             '{"expression": "17% of 2340"}', _object({"expression": _str()}, ["expression"])),
    ToolSpec("solve_equation", "Solve an equation or a system (separated by ';') for its unknowns with SymPy",
             '{"equation": "x^2 - 5*x + 6 = 0", "variable": "x"}',
             _object({"equation": _str(), "variable": _str(20, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,19}$"),
                      "domain": {"enum": ["complex", "real"]}}, ["equation"])),
    ToolSpec("math", "Symbolic maths: simplify, expand, factor, derivative, integral (definite with lower/upper), "
             "limit (at point, 'oo' for infinity)", '{"operation": "derivative", "expression": "x^3 + 2*x"}',
             _object({"operation": {"enum": ["simplify", "expand", "factor", "derivative", "integral", "limit"]},
                      "expression": _str(), "variable": _str(20, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,19}$"),
                      "order": _int(1, 10), "lower": _str(60), "upper": _str(60), "point": _str(60),
                      "direction": {"enum": ["+", "-", "+-"]}}, ["operation", "expression"],
                     allOf=_requires({"limit": ["point"]}))),
    ToolSpec("date_diff", "Days (and weeks, months, years, business days) between two dates or date-times",
             '{"start": "2024-02-01", "end": "2024-03-01"}',
             _object({"start": DATE, "end": DATE, "include_end": {"type": "boolean"}}, ["start", "end"])),
    ToolSpec("date_add", "Add or subtract years, months, weeks, days, hours, minutes or business days to a date",
             '{"date": "2024-01-31", "months": 1}',
             _object({"date": DATE, "years": _int(-1000, 1000), "months": _int(-12000, 12000),
                      "weeks": _int(-52000, 52000), "days": _int(-365000, 365000),
                      "hours": _int(-8_760_000, 8_760_000), "minutes": _int(-525_600_000, 525_600_000),
                      "business_days": _int(-100_000, 100_000)}, ["date"])),
    ToolSpec("day_of_week", "The weekday, ISO week and day of year of a date", '{"date": "2024-07-04"}',
             _object({"date": DATE}, ["date"])),
    ToolSpec("calendar_facts", "Leap year, days in the year or month, first weekday, ISO weeks, Easter Sunday",
             '{"year": 2024, "month": 2}', _object({"year": _int(1, 9999), "month": _int(1, 12)}, ["year"])),
    ToolSpec("time_facts", "UTC offset, DST, Unix time, ISO week and day of year of a moment in a time zone "
             "(now when no datetime is given)", '{"datetime": "2024-07-01T12:00", "timezone": "Europe/Berlin"}',
             _object({"datetime": DATE, "timezone": TIMEZONE}, [])),
    ToolSpec("timezone_convert", "Convert a local date-time between IANA time zones; reports DST gaps and "
             "ambiguous (folded) times", '{"datetime": "2024-03-10T02:30", "from_tz": "America/New_York", '
             '"to_tz": "Europe/Berlin"}',
             _object({"datetime": DATE, "from_tz": TIMEZONE, "to_tz": TIMEZONE, "fold": {"enum": [0, 1]}},
                     ["datetime", "from_tz", "to_tz"])),
    ToolSpec("decimal_finance", "Exact decimal money maths with rounding modes: round, sum, percent_of, "
             "percent_change, simple_interest, compound_interest, loan_payment",
             '{"operation": "compound_interest", "principal": "1000", "rate_percent": "5", "years": 10}',
             _object({"operation": {"enum": ["round", "sum", "percent_of", "percent_change", "simple_interest",
                                             "compound_interest", "loan_payment"]},
                      "value": NUMBER, "values": {"type": "array", "items": NUMBER, "minItems": 1, "maxItems": 1000},
                      "percent": NUMBER, "from_value": NUMBER, "to_value": NUMBER, "principal": NUMBER,
                      "rate_percent": NUMBER, "years": _int(0, 1000), "periods_per_year": _int(1, 365),
                      "months": _int(1, 1200), "places": _int(0, 28), "rounding": {"enum": ROUNDING}},
                     ["operation"],
                     allOf=_requires({"round": ["value"], "sum": ["values"], "percent_of": ["value", "percent"],
                                      "percent_change": ["from_value", "to_value"],
                                      "simple_interest": ["principal", "rate_percent", "years"],
                                      "compound_interest": ["principal", "rate_percent", "years"],
                                      "loan_payment": ["principal", "rate_percent", "months"]}))),
    ToolSpec("exact_probability", "Exact probabilities as fractions: combinations, permutations, binomial "
             "(exactly/at_least/at_most k of n), dice_sum, all_of / any_of independent events",
             '{"operation": "binomial", "n": 10, "k": 3, "p": "1/2", "mode": "exactly"}',
             _object({"operation": {"enum": ["combinations", "permutations", "binomial", "dice_sum", "all_of",
                                             "any_of"]},
                      "n": _int(0, 100_000), "k": _int(0, 100_000), "p": PROBABILITY,
                      "mode": {"enum": ["exactly", "at_least", "at_most"]},
                      "dice": _int(1, 50), "sides": _int(2, 100), "target": _int(0, 5000),
                      "probabilities": {"type": "array", "items": PROBABILITY, "minItems": 1, "maxItems": 100}},
                     ["operation"],
                     allOf=_requires({"combinations": ["n", "k"], "permutations": ["n", "k"],
                                      "binomial": ["n", "k", "p"], "dice_sum": ["dice", "sides", "target"],
                                      "all_of": ["probabilities"], "any_of": ["probabilities"]}))),
    ToolSpec("structured_validate", "Check that text is well-formed JSON, YAML, XML or CSV (no entity "
             "expansion, no YAML aliases); JSON/YAML optionally against a JSON Schema",
             '{"format": "json", "text": "{\\"a\\": 1}"}',
             _object({"format": {"enum": ["json", "yaml", "xml", "csv"]}, "text": _str(MAX_TEXT, 0),
                      "schema": {"type": "object"}, "delimiter": _str(1)}, ["format", "text"])),
    ToolSpec("unit_convert", "Convert a quantity between units (length, mass, speed, temperature, energy, data, "
             "...)", '{"value": 100, "from_unit": "km/h", "to_unit": "m/s"}',
             _object({"value": NUMBER, "from_unit": _str(64), "to_unit": _str(64)}, ["value", "from_unit", "to_unit"])),
    ToolSpec("statistics_calc", "Descriptive statistics of numbers: count, sum, mean, median, mode, variance, "
             "standard deviation (sample and population), min, max, range, quartiles",
             '{"values": [2, 4, 4, 4, 5, 5, 7, 9]}',
             _object({"values": {"type": "array", "items": NUMBER, "minItems": 1, "maxItems": 10_000}}, ["values"])),
    ToolSpec("hash_text", "Hash UTF-8 text (md5, sha1, sha2, sha3, blake2); hex digest",
             '{"text": "hello", "algorithm": "sha256"}',
             _object({"text": _str(MAX_TEXT, 0), "algorithm": {"enum": HASHES}}, ["text"]), version="1.1.0"),
    ToolSpec("checksum", "Checksums of UTF-8 text: CRC-32, CRC-16/CCITT-FALSE, Adler-32; check digits: Luhn "
             "(card numbers), ISO 7064 mod 97-10 (IBAN)", '{"text": "123456789", "algorithm": "crc32"}',
             _object({"text": _str(MAX_TEXT, 0), "algorithm": {"enum": CHECKSUMS}}, ["text"])),
    ToolSpec("number_base", "Convert a whole number between bases 2-36 (0x, 0b, 0o prefixes understood)",
             '{"value": "0xFF", "to_base": 10}',
             _object({"value": {"type": ["string", "integer"], "maxLength": 260, "minimum": -(10**75),
                                "maximum": 10**75},
                      "from_base": _int(2, 36),
                      "to_base": {"oneOf": [_int(2, 36), {"type": "array", "items": _int(2, 36), "minItems": 1,
                                                          "maxItems": 8}]}}, ["value"])),
    ToolSpec("number_words", "A whole number in English words (short scale)", '{"value": 1234}',
             _object({"value": _int(-(10**18) + 1, 10**18 - 1)}, ["value"])),
    ToolSpec("json_format", "Pretty-print, minify or sort the keys of a JSON document",
             '{"text": "{\"b\":1,\"a\":2}", "operation": "sort_keys"}',
             _object({"text": _str(MAX_TEXT), "operation": {"enum": ["pretty", "minify", "sort_keys"]},
                      "indent": _int(0, 8)}, ["text"])),
    ToolSpec("regex_replace", "Replace the matches of a regular expression in a text (\\1 for groups)",
             '{"pattern": "(\\d+)", "replacement": "<\\1>", "text": "a1b22"}',
             _object({"pattern": _str(), "replacement": _str(MAX_EXPRESSION, 0), "text": _str(MAX_TEXT, 0),
                      "flags": {"type": "array", "items": {"enum": ["ignorecase", "multiline", "dotall"]},
                                "maxItems": 3},
                      "count": _int(0, 10_000)}, ["pattern", "replacement", "text"])),
    ToolSpec("text_compare", "Levenshtein edit distance and similarity of two texts (up to 2,000 characters "
             "each)", '{"first": "kitten", "second": "sitting"}',
             _object({"first": _str(2000, 0), "second": _str(2000, 0), "case_sensitive": {"type": "boolean"}},
                     ["first", "second"])),
    ToolSpec("chain", "Two or three tool calls in a row; \"$prev\" in a step's arguments is the previous "
             "step's value", '{"steps": [{"tool": "date_add", "args": {"date": "2024-01-01", "days": 100}}, '
             '{"tool": "day_of_week", "args": {"date": "$prev"}}]}',
             _object({"steps": {"type": "array", "minItems": 2, "maxItems": 3,
                                "items": _object({"tool": {"enum": CHAINABLE}, "args": {"type": "object"}},
                                                 ["tool", "args"])}}, ["steps"])),
    ToolSpec("base64_codec", "Base64 encode or decode text (standard or URL-safe alphabet)",
             '{"operation": "encode", "text": "hello"}',
             _object({"operation": {"enum": ["encode", "decode"]}, "text": _str(MAX_TEXT, 0),
                      "url_safe": {"type": "boolean"}}, ["operation", "text"])),
    ToolSpec("regex_extract", "All matches (with groups and positions) of a regular expression in a text",
             '{"pattern": "\\\\d+", "text": "a1b22"}',
             _object({"pattern": _str(), "text": _str(MAX_TEXT, 0),
                      "flags": {"type": "array", "items": {"enum": ["ignorecase", "multiline", "dotall"]},
                                "maxItems": 3},
                      "max_matches": _int(1, 1000)}, ["pattern", "text"])),
    ToolSpec("subnet_calc", "IPv4/IPv6 subnet facts: network, netmask, broadcast, host range and count; "
             "optional membership test and split into smaller subnets", '{"network": "192.168.1.0/24"}',
             _object({"network": _str(64), "contains": _str(64), "new_prefix": _int(0, 128)}, ["network"])),
    ToolSpec("text_analyze", "Count characters, letters, words, sentences, lines; occurrences of a substring",
             '{"text": "strawberry", "count": "r"}',
             _object({"text": _str(MAX_TEXT, 0), "count": _str(100), "case_sensitive": {"type": "boolean"}},
                     ["text"])),
    ToolSpec("prime_factorize", "Prime factorisation and primality of a whole number (up to 40 digits)",
             '{"n": 360}', _object({"n": {"type": ["integer", "string"], "minimum": 1, "maximum": 10**40,
                                         "pattern": r"^\s*\d{1,40}\s*$"}}, ["n"])),
    ToolSpec("gcd_lcm", "Greatest common divisor and least common multiple of whole numbers",
             '{"numbers": [12, 18, 30]}',
             _object({"numbers": {"type": "array", "minItems": 2, "maxItems": 100,
                                  "items": {"type": "integer", "minimum": -(10**100), "maximum": 10**100}}},
                     ["numbers"])),
    ToolSpec("json_query", "Select values from JSON by a path like a.b[0].c, items[*].name or [\"key\"]",
             '{"data": {"a": [1, 2]}, "path": "a[1]"}',
             _object({"data": {"description": "a JSON value; a string is parsed as a JSON document"},
                      "path": _str(MAX_EXPRESSION, 0)}, ["data", "path"])),
    ToolSpec("roman_numeral", "Convert between whole numbers (1-3999) and Roman numerals", '{"value": 1994}',
             _object({"value": {"type": ["integer", "string"], "minimum": 1, "maximum": 3999,
                                "pattern": r"^\s*([IVXLCDMivxlcdm]{1,20}|\d{1,4})\s*$"}}, ["value"])),
    ToolSpec("graph_analyze", "Graph facts from an edge list: nodes, edges, degrees, connected components, "
             "cycles, Eulerian path or circuit, shortest path (path_from/path_to)",
             '{"edges": [["a", "b"], ["b", "c"], ["c", "a"]]}',
             _object({"edges": {"type": "array", "maxItems": 10_000,
                                "items": {"type": "array", "items": NODE, "minItems": 2, "maxItems": 2}},
                      "nodes": {"type": "array", "items": NODE, "maxItems": 10_000},
                      "directed": {"type": "boolean"}, "path_from": NODE, "path_to": NODE}, ["edges"])),
]
TOOL_SPECS: dict[str, ToolSpec] = {spec.name: spec for spec in _SPECS}
BRIEFS = {
    "calculate": "exact arithmetic and percentages",
    "solve_equation": "solve equations for unknowns",
    "math": "simplify, expand, factor, derivative, integral, limit",
    "date_diff": "days between two dates",
    "date_add": "a date plus or minus days, months, years",
    "day_of_week": "weekday of a date",
    "calendar_facts": "leap years, days in a month, Easter",
    "time_facts": "UTC offset, DST, Unix time in a zone",
    "timezone_convert": "convert a time between IANA zones",
    "decimal_finance": "money maths, interest, loans, rounding",
    "exact_probability": "combinatorics and exact probabilities",
    "structured_validate": "check JSON/YAML/XML/CSV",
    "unit_convert": "convert units",
    "statistics_calc": "mean, median, standard deviation",
    "hash_text": "hash digests",
    "base64_codec": "Base64 encode/decode",
    "regex_extract": "regular expression matches",
    "subnet_calc": "IP subnet facts",
    "text_analyze": "count words, letters, substrings",
    "prime_factorize": "prime factors, primality",
    "gcd_lcm": "gcd and lcm",
    "json_query": "select values from JSON",
    "roman_numeral": "Roman numerals",
    "graph_analyze": "graph components, cycles, Euler paths",
    "checksum": "CRC-32, Adler-32, Luhn, IBAN checks",
    "number_base": "binary, octal, hex, any base 2-36",
    "number_words": "a number in English words",
    "json_format": "pretty-print or minify JSON",
    "regex_replace": "regular expression replace",
    "text_compare": "edit distance of two texts",
    "chain": "2-3 tool calls, each fed the previous result",
}


def parse_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def select_tools(enabled: str = "all", disabled: str = "") -> dict[str, ToolSpec]:
    """The tools a deployment offers: `enabled` ("all" or a comma list) minus `disabled` (a comma list).
    Unknown names are an error, so a typo in the configuration does not silently disable a tool."""
    wanted = list(TOOL_SPECS) if enabled.strip().lower() in ("", "all", "*") else parse_names(enabled)
    dropped = set(parse_names(disabled))
    unknown = sorted((set(wanted) | dropped) - set(TOOL_SPECS))
    if unknown:
        raise ValueError(f"unknown tool name(s) in the tool configuration: {', '.join(unknown)}")
    return {name: TOOL_SPECS[name] for name in TOOL_SPECS if name in wanted and name not in dropped}


def tool_reach(names: Iterable[str], external: str = "") -> dict[str, str]:
    """Where each tool's call goes: `external` (FleetSettings.tools_external, a comma list) leaves the fleet, every
    other tool computes within it (`fleet`). Unknown names are an error, as in select_tools."""
    outside = set(parse_names(external))
    unknown = sorted(outside - set(TOOL_SPECS))
    if unknown:
        raise ValueError(f"unknown tool name(s) in MOE_TOOLS_EXTERNAL: {', '.join(unknown)}")
    return {name: "external" if name in outside else "fleet" for name in names}


# unit_convert's vocabulary beyond pint's own names (shared so the planner's preflight reads units the same way)
UNIT_TEXT = re.compile(r"^[A-Za-z\u00b0\u00b5\u03bc\u2126%][A-Za-z0-9\u00b0\u00b5\u03bc\u2126_ /*^().\u00b7%-]{0,63}$")
UNIT_ALIASES = {
    "\u00b0c": "degC", "\u00bac": "degC", "celsius": "degC", "degrees celsius": "degC", "c": "degC",
    "\u00b0f": "degF", "\u00baf": "degF", "fahrenheit": "degF", "degrees fahrenheit": "degF", "f": "degF",
    "k": "kelvin", "kelvin": "kelvin", "kph": "km/h", "kmh": "km/h", "km/hr": "km/h", "mph": "mile/hour",
    "kts": "knot", "knots": "knot", "mps": "m/s", "lbs": "lb", "pounds": "lb", "ounces": "oz",
    "miles per hour": "mile/hour", "kilometers per hour": "km/h", "kilometres per hour": "km/h",
    "meters per second": "m/s", "metres per second": "m/s", "liters": "liter", "litres": "liter",
    "kb": "kilobyte", "mb": "megabyte", "gb": "gigabyte", "tb": "terabyte", "kib": "kibibyte",
    "mib": "mebibyte", "gib": "gibibyte", "tib": "tebibyte",
}


def normalise_unit(text: str) -> str | None:
    """Common spellings (degrees C, mph, kph, GB ...) as pint names; None for text outside the unit alphabet."""
    clean = " ".join(text.strip().split())
    if not UNIT_TEXT.match(clean) or re.search(r"\d{3,}", clean):
        return None
    alias = UNIT_ALIASES.get(clean.lower())
    if alias:
        return alias
    return clean.replace("^", "**").replace("\u00b7", "*").replace(" per ", "/")
