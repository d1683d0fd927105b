"""Every precision tool against known answers, and its clear errors (schema check + implementation,
in-process; the worker-process time bound is exercised in test_tools_properties.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mcp_service.registry import Registry
from mcp_service.runner import WorkerPool, execute
from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts.tools import TOOL_SPECS, select_tools

pytestmark = pytest.mark.unit
REGISTRY = Registry(select_tools(), WorkerPool(1))  # the pool is never started: only check() is used here


def run(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate like the service does, then execute in-process exactly like a worker."""
    problem = REGISTRY.check(tool, args)
    if problem is not None:
        return {"code": problem[0], "message": problem[1]}
    return execute(tool, args, 1_000_000)


# (tool, args, expected text or None, expected result fields)
KNOWN: list[tuple[str, dict[str, Any], str | None, dict[str, Any]]] = [
    ("calculate", {"expression": "17% of 2340"}, "17% of 2,340 = 397.8", {"fraction": "1989/5"}),
    ("calculate", {"expression": "0.1 + 0.2"}, "0.1 + 0.2 = 0.3", {"exact": True}),
    ("calculate", {"expression": "0xFF + 0b1010 + 0o17"}, "0xFF + 0b1010 + 0o17 = 280", {"fraction": "280"}),
    ("calculate", {"expression": "2^10 - sqrt(16) * 3"}, None, {"result": "1012"}),
    ("calculate", {"expression": "1/3"}, "1/3 = 0.333333333333333 (exactly 1/3)", {"fraction": "1/3"}),
    ("calculate", {"expression": "sqrt(2)"}, None, {"result": "1.4142135623731", "exact": False}),
    ("calculate", {"expression": "exp(1) + sin(pi/2) + ln(1)"}, None, {"result": "3.71828182845905"}),
    ("calculate", {"expression": "log(1000, 10) + log2(8) + log10(100)"}, None, {"result": "8"}),
    ("calculate", {"expression": "factorial(20) // 10**15 % 1000"}, None, {"result": "432"}),
    ("calculate", {"expression": "round(2.5) + round(-2.5) + floor(-1.5) + ceil(1.2) + abs(-3)"}, None,
     {"result": "3"}),
    ("calculate", {"expression": "2(3 + 4)"}, None, {"result": "14"}),
    ("calculate", {"expression": "max(1, 7, 3) + min(4, 2) + gcd(12, 18) + lcm(4, 6)"}, None, {"result": "27"}),
    ("calculate", {"expression": "15% of 80 + 50%"}, None, {"result": "12.5"}),
    ("calculate", {"expression": "cbrt(-27) + comb(5, 2) + perm(5, 2)"}, None, {"result": "27"}),
    ("solve_equation", {"equation": "x^2 - 5x + 6 = 0"}, "x^2 - 5x + 6 = 0: x = 2 or x = 3",
     {"solutions": [{"x": "2"}, {"x": "3"}]}),
    ("solve_equation", {"equation": "x + y = 3; x - y = 1"}, None, {"solutions": [{"x": "2", "y": "1"}]}),
    ("solve_equation", {"equation": "x^2 = -1", "domain": "real"}, "x^2 = -1 has no real solution.",
     {"solutions": []}),
    ("solve_equation", {"equation": "2*(x + 1) = 2x + 2"}, None, {"all_values": True}),
    ("math", {"operation": "derivative", "expression": "x^3 + 2x"}, "d/dx (x^3 + 2x) = 3*x**2 + 2", {}),
    ("math", {"operation": "derivative", "expression": "sin(x)", "order": 2}, None, {"result": "-sin(x)"}),
    ("math", {"operation": "integral", "expression": "x^2", "lower": "0", "upper": "3"}, None, {"result": "9"}),
    ("math", {"operation": "integral", "expression": "cos(t)", "variable": "t"}, None, {"result": "sin(t) + C"}),
    ("math", {"operation": "limit", "expression": "sin(x)/x", "point": "0"}, None, {"result": "1"}),
    ("math", {"operation": "limit", "expression": "(1 + 1/n)^n", "point": "oo"}, None, {"result": "E"}),
    ("math", {"operation": "simplify", "expression": "sin(x)^2 + cos(x)^2"}, None, {"result": "1"}),
    ("math", {"operation": "factor", "expression": "x^2 - 1"}, None, {"result": "(x - 1)*(x + 1)"}),
    ("math", {"operation": "expand", "expression": "(x + 1)^2"}, None, {"result": "x**2 + 2*x + 1"}),
    ("date_diff", {"start": "2024-02-01", "end": "2024-03-01"},
     "There are 29 days between 2024-02-01 and 2024-03-01 (4 weeks and 1 day); 21 business days (Monday to Friday, "
     "end date excluded).", {"days": 29, "months": 1, "business_days": 21}),
    ("date_diff", {"start": "2023-02-01", "end": "2023-03-01"}, None, {"days": 28}),
    ("date_diff", {"start": "2024-01-01", "end": "2024-01-08", "include_end": True}, None,
     {"days": 8, "business_days": 5}),
    ("date_diff", {"start": "2025-03-01", "end": "2024-03-01"}, None, {"days": -365, "months": -12, "years": -1}),
    ("date_diff", {"start": "2024-03-10T00:00-05:00", "end": "2024-03-11T00:00-04:00"}, None,
     {"seconds": 82800.0}),
    ("date_add", {"date": "2024-01-31", "months": 1}, None, {"result": "2024-02-29"}),
    ("date_add", {"date": "2024-02-29", "years": 1}, None, {"result": "2025-02-28"}),
    ("date_add", {"date": "2024-07-05", "business_days": 1}, None, {"result": "2024-07-08", "weekday": "Monday"}),
    ("date_add", {"date": "2024-01-01", "days": -1, "hours": 12}, None, {"result": "2023-12-31T12:00:00"}),
    ("day_of_week", {"date": "2024-07-04"}, "2024-07-04 is a Thursday (ISO week 27).",
     {"weekday": "Thursday", "day_of_year": 186}),
    ("day_of_week", {"date": "2000-01-01"}, None, {"weekday": "Saturday", "iso_year": 1999, "iso_week": 52}),
    ("calendar_facts", {"year": 2024, "month": 2}, None,
     {"leap_year": True, "days_in_month": 29, "month_first_weekday": "Thursday", "easter_sunday": "2024-03-31"}),
    ("calendar_facts", {"year": 1900}, None, {"leap_year": False, "days_in_year": 365}),
    ("calendar_facts", {"year": 2025}, None, {"easter_sunday": "2025-04-20", "iso_weeks": 52}),
    ("calendar_facts", {"year": 2020}, None, {"iso_weeks": 53}),
    ("time_facts", {"datetime": "2024-07-01T12:00", "timezone": "Europe/Berlin"}, None,
     {"utc_offset": "+02:00", "dst": True, "unix_time": 1719828000.0, "abbreviation": "CEST"}),
    ("time_facts", {"datetime": "2024-01-01T00:00Z", "timezone": "Asia/Kolkata"}, None,
     {"local": "2024-01-01T05:30:00+05:30", "dst": False}),
    ("timezone_convert", {"datetime": "2024-06-01T12:00", "from_tz": "America/New_York", "to_tz": "Asia/Tokyo"},
     "2024-06-01 12:00 in America/New_York is 2024-06-02 01:00 in Asia/Tokyo.", {"gap": False}),
    ("timezone_convert", {"datetime": "2024-03-10T02:30", "from_tz": "America/New_York", "to_tz": "UTC"}, None,
     {"gap": True, "source": "2024-03-10T03:30:00-04:00", "result": "2024-03-10T07:30:00+00:00"}),
    ("timezone_convert", {"datetime": "2024-11-03T01:30", "from_tz": "America/New_York", "to_tz": "UTC"}, None,
     {"ambiguous": True, "result": "2024-11-03T05:30:00+00:00",
      "candidates": ["2024-11-03T05:30:00+00:00", "2024-11-03T06:30:00+00:00"]}),
    ("timezone_convert", {"datetime": "2024-11-03T01:30", "from_tz": "America/New_York", "to_tz": "UTC",
                          "fold": 1}, None, {"result": "2024-11-03T06:30:00+00:00"}),
    ("decimal_finance", {"operation": "round", "value": "2.675", "places": 2}, None, {"result": "2.68"}),
    ("decimal_finance", {"operation": "round", "value": "2.675", "places": 2, "rounding": "half_even"}, None,
     {"result": "2.68"}),
    ("decimal_finance", {"operation": "round", "value": "2.665", "places": 2, "rounding": "half_even"}, None,
     {"result": "2.66"}),
    ("decimal_finance", {"operation": "sum", "values": ["0.1", "0.2", 0.3]}, None, {"result": "0.60"}),
    ("decimal_finance", {"operation": "percent_of", "value": "2340", "percent": "17"}, None, {"result": "397.80"}),
    ("decimal_finance", {"operation": "percent_change", "from_value": 80, "to_value": 100}, None,
     {"result": "25.00"}),
    ("decimal_finance", {"operation": "compound_interest", "principal": "1000", "rate_percent": "5", "years": 10},
     None, {"result": "1628.89", "interest": "628.89462677744140625"}),
    ("decimal_finance", {"operation": "simple_interest", "principal": 1000, "rate_percent": 5, "years": 3}, None,
     {"result": "1150.00"}),
    ("decimal_finance", {"operation": "loan_payment", "principal": "200000", "rate_percent": "6", "months": 360},
     None, {"result": "1199.10"}),
    ("exact_probability", {"operation": "combinations", "n": 52, "k": 5}, "C(52, 5) = 2,598,960", {}),
    ("exact_probability", {"operation": "permutations", "n": 10, "k": 3}, None, {"result": "720"}),
    ("exact_probability", {"operation": "binomial", "n": 10, "k": 3, "p": "1/2"}, None, {"fraction": "15/128"}),
    ("exact_probability", {"operation": "binomial", "n": 10, "k": 3, "p": 0.5, "mode": "at_least"}, None,
     {"fraction": "121/128"}),
    ("exact_probability", {"operation": "dice_sum", "dice": 2, "sides": 6, "target": 7}, None, {"fraction": "1/6"}),
    ("exact_probability", {"operation": "dice_sum", "dice": 3, "sides": 6, "target": 10}, None,
     {"fraction": "1/8"}),
    ("exact_probability", {"operation": "any_of", "probabilities": ["1/2", "1/3"]}, None, {"fraction": "2/3"}),
    ("exact_probability", {"operation": "all_of", "probabilities": ["1/2", "0.5"]}, None, {"fraction": "1/4"}),
    ("structured_validate", {"format": "json", "text": '{"a": [1, 2]}'}, "The JSON is valid (an object with 1 key).",
     {"valid": True}),
    ("structured_validate", {"format": "json", "text": '{"a": NaN}'}, None, {"valid": False}),
    ("structured_validate", {"format": "json", "text": '{"a": 1}', "schema": {"properties": {"a": {"type":
                                                                                                  "string"}}}},
     None, {"valid": False, "errors": ["a: 1 is not of type 'string'"]}),
    ("structured_validate", {"format": "yaml", "text": "a: 1\nb: [x, y]\n"}, None, {"valid": True}),
    ("structured_validate", {"format": "json", "text": '{"a": 1}', "schema": {
        "$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}}},
     None, {"valid": False, "errors": ["a: 1 is not of type 'string'"]}),  # a local reference is followed
    ("structured_validate", {"format": "yaml", "text": "a: &x [1]\nb: *x\n"}, None, {"valid": False}),
    ("structured_validate", {"format": "xml", "text": "<a><b/><b>t</b></a>"}, None,
     {"valid": True, "summary": {"root": "a", "elements": 3, "depth": 2}}),
    ("structured_validate", {"format": "xml", "text": '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'}, None,
     {"valid": False}),
    ("structured_validate", {"format": "csv", "text": "a,b\n1,2\n3\n"}, None,
     {"valid": False, "errors": ["row 3 has 1 fields, expected 2"]}),
    ("structured_validate", {"format": "csv", "text": "a;b\n1;2\n", "delimiter": ";"}, None,
     {"valid": True, "summary": {"rows": 2, "columns": 2, "header": ["a", "b"]}}),
    ("unit_convert", {"value": 100, "from_unit": "km/h", "to_unit": "m/s"},
     "100 km/h = 27.7777777777778 m/s (exactly 250/9)", {"fraction": "250/9"}),
    ("unit_convert", {"value": 100, "from_unit": "°C", "to_unit": "°F"}, None, {"result": "212"}),
    ("unit_convert", {"value": "98.6", "from_unit": "fahrenheit", "to_unit": "celsius"}, None, {"result": "37"}),
    ("unit_convert", {"value": 1, "from_unit": "mile", "to_unit": "ft"}, None, {"result": "5280"}),
    ("unit_convert", {"value": 1, "from_unit": "GiB", "to_unit": "MB"}, None, {"result": "1073.741824"}),
    ("unit_convert", {"value": 1, "from_unit": "m^2", "to_unit": "cm^2"}, None, {"result": "10000"}),
    ("statistics_calc", {"values": [2, 4, 4, 4, 5, 5, 7, 9]}, None,
     {"mean": "5", "median": "4.5", "population_stdev": "2", "modes": ["4"], "count": 8}),
    ("statistics_calc", {"values": ["0.1", "0.2", "0.3"]}, None, {"mean": "0.2", "sample_variance": "0.01"}),
    ("hash_text", {"text": "hello"}, None,
     {"hex": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}),
    ("hash_text", {"text": "", "algorithm": "md5"}, None, {"hex": "d41d8cd98f00b204e9800998ecf8427e"}),
    ("base64_codec", {"operation": "encode", "text": "hello"}, "Base64 of 'hello' = aGVsbG8=", {}),
    ("base64_codec", {"operation": "decode", "text": "aGVsbG8="}, None, {"result": "hello", "utf8": True}),
    ("base64_codec", {"operation": "decode", "text": "_w", "url_safe": True}, None, {"result": "ff", "utf8": False}),
    ("regex_extract", {"pattern": r"(\d+)-(\d+)", "text": "a 1-2 b 33-44"}, None,
     {"count": 2, "matches": [{"match": "1-2", "start": 2, "end": 5, "groups": ["1", "2"], "named": {}},
                              {"match": "33-44", "start": 8, "end": 13, "groups": ["33", "44"], "named": {}}]}),
    ("regex_extract", {"pattern": "a", "text": "AAA", "flags": ["ignorecase"], "max_matches": 2}, None,
     {"count": 2, "truncated": True}),
    ("subnet_calc", {"network": "192.168.1.0/24"}, None,
     {"netmask": "255.255.255.0", "broadcast": "192.168.1.255", "first_host": "192.168.1.1",
      "last_host": "192.168.1.254", "usable_hosts": "254", "private": True}),
    ("subnet_calc", {"network": "10.1.2.3 255.255.252.0", "contains": "10.1.3.200", "new_prefix": 23}, None,
     {"network": "10.1.0.0/22", "contains": {"address": "10.1.3.200", "inside": True},
      "subnets": ["10.1.0.0/23", "10.1.2.0/23"]}),
    ("subnet_calc", {"network": "2001:db8::/64"}, None,
     {"version": 6, "addresses": str(2**64), "broadcast": None, "last_host": "2001:db8::ffff:ffff:ffff:ffff"}),
    ("subnet_calc", {"network": "10.0.0.0/31"}, None, {"usable_hosts": "2"}),
    ("text_analyze", {"text": "strawberry", "count": "r"}, "'r' occurs 3 times in 'strawberry' (ignoring case).",
     {}),
    ("text_analyze", {"text": "Hello world. It's me!\nBye."}, None,
     {"words": 5, "sentences": 3, "lines": 2, "characters": 26}),
    ("prime_factorize", {"n": 360}, "360 = 2\u00b3 \u00d7 3\u00b2 \u00d7 5 (not prime).",
     {"prime": False, "flat": ["2", "2", "2", "3", "3", "5"]}),
    ("prime_factorize", {"n": "97"}, "97 is prime.", {"prime": True}),
    ("prime_factorize", {"n": 1}, "1 has no prime factors.", {"prime": False, "factors": []}),
    ("gcd_lcm", {"numbers": [12, 18, 30]}, "gcd(12, 18, 30) = 6; lcm = 180.", {"gcd": "6", "lcm": "180"}),
    ("gcd_lcm", {"numbers": [0, 5]}, None, {"gcd": "5", "lcm": "0"}),
    ("json_query", {"data": {"a": {"b": [10, 20, 30]}}, "path": "a.b[-1]"}, "a.b[-1] = 30", {"value": 30}),
    ("json_query", {"data": '{"items": [{"name": "x"}, {"name": "y"}]}', "path": "$.items[*].name"}, None,
     {"values": ["x", "y"], "count": 2}),
    ("json_query", {"data": {"a b": {"c": True}}, "path": '["a b"].c'}, None, {"value": True}),
    ("json_query", {"data": {"a": 1}, "path": "b"}, "Nothing is at path 'b'.", {"found": False}),
    ("roman_numeral", {"value": 1994}, "1994 = MCMXCIV", {"roman": "MCMXCIV"}),
    ("roman_numeral", {"value": "mmxxiv"}, "MMXXIV = 2024", {"number": 2024}),
    ("roman_numeral", {"value": "3999"}, None, {"roman": "MMMCMXCIX"}),
    ("graph_analyze", {"edges": [["a", "b"], ["b", "c"], ["c", "a"]]}, None,
     {"components": 1, "has_cycle": True, "eulerian": "circuit", "euler_walk": ["a", "b", "c", "a"]}),
    ("graph_analyze", {"edges": [[1, 2], [2, 3], [3, 4], [4, 2]], "path_from": 1, "path_to": 4}, None,
     {"eulerian": "path", "euler_walk": ["1", "2", "3", "4", "2"], "shortest_path": ["1", "2", "4"]}),
    ("graph_analyze", {"edges": [["a", "b"], ["c", "d"]], "nodes": ["e"]}, None,
     {"components": 3, "eulerian": None, "has_cycle": False}),
    ("graph_analyze", {"edges": [["a", "b"], ["b", "a"]], "directed": True}, None,
     {"has_cycle": True, "eulerian": "circuit"}),
    ("graph_analyze", {"edges": [["a", "b"], ["a", "c"]], "directed": True}, None,
     {"has_cycle": False, "eulerian": None}),
    ("checksum", {"text": "123456789"}, "CRC-32('123456789') = 0xcbf43926 (3421780262)", {"hex": "cbf43926"}),
    ("checksum", {"text": "123456789", "algorithm": "crc16_ccitt"}, None, {"hex": "29b1"}),
    ("checksum", {"text": "Wikipedia", "algorithm": "adler32"}, None, {"hex": "11e60398"}),
    ("checksum", {"text": "7992 7398 713", "algorithm": "luhn"}, "'7992 7398 713' passes the Luhn check.",
     {"valid": True}),
    ("checksum", {"text": "79927398710", "algorithm": "luhn"}, None, {"valid": False}),
    ("checksum", {"text": "GB82 WEST 1234 5698 7654 32", "algorithm": "mod97"}, None, {"valid": True, "remainder": 1}),
    ("number_base", {"value": "0xFF", "to_base": 10}, "FF (base 16, hexadecimal) = 255 (base 10, decimal).",
     {"value": "255", "from_base": 16}),
    ("number_base", {"value": "255"}, None, {"in_bases": {"2": "11111111", "8": "377", "10": "255", "16": "FF"}}),
    ("number_base", {"value": "rs", "from_base": 36, "to_base": [10]}, None, {"value": "1000"}),
    ("number_base", {"value": -10, "to_base": 2}, None, {"in_bases": {"2": "-1010"}}),
    ("number_words", {"value": 1234567}, "1,234,567 in words is "
     "'one million two hundred thirty-four thousand five hundred sixty-seven'.", {}),
    ("number_words", {"value": -40}, None, {"words": "minus forty"}),
    ("json_format", {"text": '{"b": 1, "a": [1, 2]}', "operation": "minify"}, '{"b":1,"a":[1,2]}', {}),
    ("json_format", {"text": '{"b": 1, "a": 2}', "operation": "sort_keys", "indent": 0}, None,
     {"result": '{\n"a": 2,\n"b": 1\n}'}),
    ("regex_replace", {"pattern": r"(\d+)", "replacement": r"<\1>", "text": "a1b22"}, "2 replacements: 'a<1>b<22>'",
     {"replacements": 2}),
    ("text_compare", {"first": "kitten", "second": "sitting"}, None, {"distance": 3, "identical": False}),
    ("text_compare", {"first": "ABC", "second": "abc", "case_sensitive": False}, None, {"distance": 0}),
    ("chain", {"steps": [{"tool": "date_add", "args": {"date": "2024-01-01", "days": 100}},
                         {"tool": "day_of_week", "args": {"date": "$prev"}}]},
     "2024-01-01 + 100 days = 2024-04-10 (Wednesday); then 2024-04-10 is a Wednesday (ISO week 15).", {}),
    ("chain", {"steps": [{"tool": "calculate", "args": {"expression": "1/3"}},
                         {"tool": "calculate", "args": {"expression": "$prev * 3"}}]}, None,
     {"result": {"expression": "(1/3) * 3", "exact": True, "result": "1", "fraction": "1", "decimal": "1",
                 "value": 1.0}}),
]


def test_every_tool_has_known_answers_and_an_implementation() -> None:
    assert set(IMPLEMENTATIONS) == set(TOOL_SPECS)
    assert {tool for tool, *_ in KNOWN} == set(TOOL_SPECS)


@pytest.mark.parametrize(("tool", "args", "text", "fields"), KNOWN, ids=[f"{c[0]}-{i}" for i, c in enumerate(KNOWN)])
def test_known_answer(tool: str, args: dict[str, Any], text: str | None, fields: dict[str, Any]) -> None:
    outcome = run(tool, args)
    assert "code" not in outcome, outcome
    if text is not None:
        assert outcome["text"] == text
    for key, value in fields.items():
        assert outcome["result"][key] == value, key


ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    ("calculate", {"expression": "__import__('os').system('id')"}, "wrong_arguments", "whitelisted functions"),
    ("calculate", {"expression": "(1).__class__"}, "wrong_arguments", "Attribute"),
    ("calculate", {"expression": "x + 1"}, "wrong_arguments", "unknown name 'x'"),
    ("calculate", {"expression": "1/0"}, "tool_execution_error", "division by zero"),
    ("calculate", {"expression": "9**9**9"}, "result_too_large", "exponent"),
    ("calculate", {"expression": "factorial(5000)"}, "result_too_large", "factorial"),
    ("calculate", {"expression": "sqrt(-1)"}, "tool_execution_error", "negative"),
    ("calculate", {"expression": "1e5000"}, "wrong_arguments", "exponent"),
    ("calculate", {"expression": "1 +"}, "wrong_arguments", "cannot read"),
    ("calculate", {"expression": "0b102 + 1"}, "wrong_arguments", "'0b102' is not a valid hexadecimal, binary"),
    ("calculate", {"expression": "x" * 501}, "wrong_arguments", "fails maxLength = 500"),
    ("calculate", {}, "wrong_arguments", "'expression' is a required property"),
    ("calculate", {"expression": "1", "extra": 2}, "wrong_arguments", "Additional properties"),
    ("solve_equation", {"equation": "x = 1 = 2"}, "wrong_arguments", "more than one"),
    ("solve_equation", {"equation": "1 = 2"}, "wrong_arguments", "no unknown"),
    ("math", {"operation": "limit", "expression": "x"}, "wrong_arguments", "'point' is a required property"),
    ("math", {"operation": "derivative", "expression": "x*y"}, "wrong_arguments", "several variables"),
    ("math", {"operation": "expand", "expression": "(x+1)^100000"}, "tool_execution_error", "exponents"),
    ("date_diff", {"start": "2024-02-30", "end": "2024-03-01"}, "wrong_arguments", "not a valid date"),
    ("date_diff", {"start": "yesterday", "end": "2024-03-01"}, "wrong_arguments", "does not match"),
    ("date_diff", {"start": "2024-01-01T00:00Z", "end": "2024-01-02T00:00"}, "wrong_arguments", "offset"),
    ("date_add", {"date": "9999-12-31", "days": 1}, "tool_execution_error", "1-9999"),
    ("day_of_week", {"date": "2024-13-01"}, "wrong_arguments", "not a valid date"),
    ("calendar_facts", {"year": 0}, "wrong_arguments", "less than the minimum"),
    ("time_facts", {"timezone": "Mars/Olympus"}, "wrong_arguments", "unknown time zone"),
    ("timezone_convert", {"datetime": "2024-01-01T00:00", "from_tz": "UTC", "to_tz": "../etc"}, "wrong_arguments",
     "does not match"),
    ("decimal_finance", {"operation": "percent_change", "from_value": 0, "to_value": 5}, "tool_execution_error",
     "from zero"),
    ("decimal_finance", {"operation": "round", "value": "1e999"}, "wrong_arguments", "out of range"),
    ("decimal_finance", {"operation": "sum"}, "wrong_arguments", "'values' is a required property"),
    ("exact_probability", {"operation": "binomial", "n": 3, "k": 5, "p": "1/2"}, "wrong_arguments", "exceed"),
    ("exact_probability", {"operation": "any_of", "probabilities": ["3/2"]}, "wrong_arguments", "between 0 and 1"),
    ("exact_probability", {"operation": "permutations", "n": 100000, "k": 100000}, "result_too_large", "bits"),
    ("structured_validate", {"format": "xml", "text": "<a/>", "schema": {}}, "wrong_arguments", "only for json"),
    ("structured_validate", {"format": "json", "text": "{}", "schema": {"type": "nope"}}, "input_schema_invalid",
     "invalid"),
    ("structured_validate", {"format": "json", "text": "1", "schema": {"$ref": "#/$defs/none"}},
     "input_schema_invalid", "cannot be resolved within the given schema"),
    ("structured_validate", {"format": "json", "text": "1", "schema": {"$ref": "file:///etc/hostname"}},
     "input_schema_invalid", "only references within the given schema"),
    ("structured_validate", {"format": "yaml", "text": "1", "schema": {"$id": "file:///etc/", "items": {
        "$dynamicRef": "hostname"}}}, "input_schema_invalid", "never URLs or files"),
    ("unit_convert", {"value": 1, "from_unit": "m", "to_unit": "s"}, "tool_execution_error", "dimensions"),
    ("unit_convert", {"value": 50, "from_unit": "N*m", "to_unit": "J"}, "tool_execution_error", "different kind"),
    ("unit_convert", {"value": 2, "from_unit": "Gy", "to_unit": "Sv"}, "tool_execution_error", "different kind"),
    ("unit_convert", {"value": 1, "from_unit": "kVA", "to_unit": "kW"}, "tool_execution_error", "different kind"),
    ("unit_convert", {"value": 1, "from_unit": "apples", "to_unit": "m"}, "wrong_arguments", "unknown unit"),
    ("unit_convert", {"value": 1, "from_unit": "m**99999", "to_unit": "m"}, "wrong_arguments", "not a unit"),
    ("statistics_calc", {"values": []}, "wrong_arguments", "should be non-empty"),
    ("hash_text", {"text": "x", "algorithm": "crc32"}, "wrong_arguments", "is not one of"),
    ("base64_codec", {"operation": "decode", "text": "abc"}, "wrong_arguments", "not valid Base64"),
    ("regex_extract", {"pattern": "(", "text": "x"}, "wrong_arguments", "invalid regular expression"),
    ("subnet_calc", {"network": "300.1.1.1/24"}, "wrong_arguments", "not an IP network"),
    ("subnet_calc", {"network": "10.0.0.0/8", "new_prefix": 24}, "wrong_arguments", "more than 256"),
    ("text_analyze", {"text": 5}, "wrong_arguments", "is not of type 'string'"),
    ("prime_factorize", {"n": 0}, "wrong_arguments", "less than the minimum"),
    ("prime_factorize", {"n": "1" * 41}, "wrong_arguments", "does not match"),
    ("gcd_lcm", {"numbers": [1]}, "wrong_arguments", "too short"),
    ("json_query", {"data": "{broken", "path": "a"}, "wrong_arguments", "not a JSON document"),
    ("json_query", {"data": {}, "path": "a..b"}, "wrong_arguments", "cannot read the path"),
    ("roman_numeral", {"value": "IIII"}, "wrong_arguments", "not a valid (canonical) Roman numeral"),
    ("roman_numeral", {"value": 4000}, "wrong_arguments", "greater than the maximum"),
    ("graph_analyze", {"edges": []}, "wrong_arguments", "no nodes"),
    ("graph_analyze", {"edges": [["a"]]}, "wrong_arguments", "too short"),
    ("checksum", {"text": "12a4", "algorithm": "luhn"}, "wrong_arguments", "2 to 64 decimal digits"),
    ("checksum", {"text": "x", "algorithm": "md5"}, "wrong_arguments", "is not one of"),
    ("number_base", {"value": "0b102"}, "wrong_arguments", "'2' is not a digit in base 2"),
    ("number_base", {"value": "1" * 257}, "wrong_arguments", "1 to 256 digits"),
    ("number_base", {"value": "10", "to_base": 37}, "wrong_arguments", "greater than the maximum of 36"),
    ("number_words", {"value": 10**18}, "wrong_arguments", "greater than the maximum"),
    ("json_format", {"text": "{broken"}, "wrong_arguments", "not valid JSON"),
    ("json_format", {"text": '{"a": NaN}'}, "wrong_arguments", "NaN is not JSON"),
    ("regex_replace", {"pattern": "(", "replacement": "", "text": "x"}, "wrong_arguments", "invalid pattern"),
    ("regex_replace", {"pattern": "a", "replacement": r"\9", "text": "a"}, "wrong_arguments", "invalid"),
    ("text_compare", {"first": "x" * 2001, "second": ""}, "wrong_arguments", "fails maxLength"),
    ("chain", {"steps": [{"tool": "calculate", "args": {"expression": "1"}}]}, "wrong_arguments", "too short"),
    ("chain", {"steps": [{"tool": "chain", "args": {}}, {"tool": "calculate", "args": {}}]}, "wrong_arguments",
     "is not one of"),
    ("chain", {"steps": [{"tool": "calculate", "args": {"expression": "$prev"}},
                         {"tool": "calculate", "args": {"expression": "1"}}]}, "wrong_arguments", "no previous"),
    ("chain", {"steps": [{"tool": "calculate", "args": {"expression": "1/0"}},
                         {"tool": "calculate", "args": {"expression": "$prev"}}]}, "tool_execution_error",
     "step 1 (calculate): division by zero"),
    ("chain", {"steps": [{"tool": "date_add", "args": {"date": "2024-01-01"}},
                         {"tool": "day_of_week", "args": {"day": "$prev"}}]}, "wrong_arguments",
     "step 2 (day_of_week)"),
    ("no_such_tool", {}, "unknown_tool", "no tool named"),
]


def test_every_tool_has_error_cases() -> None:
    assert {tool for tool, *_ in ERRORS} >= set(TOOL_SPECS)


@pytest.mark.parametrize(("tool", "args", "code", "fragment"), ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERRORS)])
def test_clear_error(tool: str, args: dict[str, Any], code: str, fragment: str) -> None:
    outcome = run(tool, args)
    assert outcome.get("code") == code, outcome
    assert fragment in outcome["message"]


def test_disabled_tools_are_unknown_and_a_broken_schema_refuses_calls() -> None:
    registry = Registry(select_tools("all", "hash_text, base64_codec"), WorkerPool(1))
    assert "hash_text" not in {c["id"] for c in registry.contracts()}
    assert registry.check("hash_text", {"text": "x"}) == ("unknown_tool", "no tool named 'hash_text' is enabled")
    only = Registry(select_tools("calculate"), WorkerPool(1))
    assert [c["id"] for c in only.contracts()] == ["calculate"]
    with pytest.raises(ValueError, match="unknown tool name"):
        select_tools("all", "hash_txt")
    from dataclasses import replace

    broken = replace(TOOL_SPECS["calculate"], input_schema={"type": "no-such-type"})
    registry = Registry({"calculate": broken}, WorkerPool(1))
    code, message = registry.check("calculate", {"expression": "1"}) or ("", "")
    assert code == "input_schema_invalid" and "no-such-type" in message


def test_contracts_are_versioned_and_hashed() -> None:
    import hashlib
    import json

    for spec in TOOL_SPECS.values():
        contract = spec.contract()
        canonical = json.dumps(spec.input_schema, sort_keys=True, separators=(",", ":"))
        assert contract["schema_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert re.fullmatch(r"\d+\.\d+\.\d+", contract["version"]) and contract["id"] == spec.name
    assert len({s.schema_sha256 for s in TOOL_SPECS.values()}) == len(TOOL_SPECS)
