"""Property-based tests: hypothesis throws schema-shaped and malformed input at every tool through the
real worker pool; every call must end with a result or one of the contract's error codes, inside its
time bound. Plus algebraic properties (round trips, consistency between tools)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_service.registry import Registry
from mcp_service.runner import WorkerPool, execute
from moe_core.contracts.tools import ERROR_CODES, TOOL_SPECS, select_tools

pytestmark = pytest.mark.unit
TIMEOUT_S = 3.0
MATHS = st.text(alphabet="0123456789+-*/%^()., xyepisqrtlogfactorial=;", max_size=40)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    pool = WorkerPool(size=2, memory_limit_mb=1024)
    pool.start()
    yield Registry(select_tools(), pool, timeout_s=TIMEOUT_S)
    pool.close()


def from_schema(schema: dict[str, Any], key: str = "") -> st.SearchStrategy[Any]:
    """Values shaped like the schema, often outside its bounds (the tool must say so, not crash)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | st.text(max_size=8)
    kinds = schema.get("type")
    if kinds is None:
        return JSON
    options = [_kind(k, schema, key) for k in (kinds if isinstance(kinds, list) else [kinds])]
    return st.one_of(options)


def _kind(kind: str, schema: dict[str, Any], key: str) -> st.SearchStrategy[Any]:
    if kind == "string":
        plain = MATHS if key in ("expression", "equation", "lower", "upper", "point") else st.text(max_size=40)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= 64) | plain
        return plain
    if kind == "integer":
        low, high = schema.get("minimum", -(10**6)), schema.get("maximum", 10**6)
        return st.integers(min_value=max(low, -(10**50)), max_value=min(high, 10**50)) | st.integers()
    if kind == "number":
        return st.floats(allow_nan=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=min(schema.get("maxItems", 6), 6))
    if kind == "object" and "properties" in schema:
        required = {k: from_schema(v, k) for k, v in schema["properties"].items() if k in schema["required"]}
        optional = {k: from_schema(v, k) for k, v in schema["properties"].items() if k not in schema["required"]}
        return st.fixed_dictionaries(required, optional=optional)
    return JSON


def arguments(tool: str) -> st.SearchStrategy[Any]:
    shaped = from_schema(TOOL_SPECS[tool].input_schema)
    return shaped | st.dictionaries(st.text(max_size=10), JSON, max_size=3) | JSON


def check_outcome(registry: Registry, tool: str, args: Any) -> None:
    outcome = registry.invoke(tool, args)
    assert outcome.code in (None, *ERROR_CODES), outcome
    if outcome.ok:
        assert isinstance(outcome.text, str) and outcome.text.strip()
        assert isinstance(outcome.result, dict)
        json.dumps(outcome.result)
    else:
        assert outcome.message.strip()


@pytest.mark.parametrize("tool", sorted(TOOL_SPECS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_input_ends_in_a_result_or_a_clear_error(registry: Registry, tool: str, data: st.DataObject) -> None:
    check_outcome(registry, tool, data.draw(arguments(tool), label="args"))


HOSTILE = [
    ("calculate", {"expression": "9**9**9**9"}), ("calculate", {"expression": "factorial(factorial(10))"}),
    ("calculate", {"expression": "(" * 150 + "1" + ")" * 150}), ("calculate", {"expression": "10**10000*10**10000"}),
    ("math", {"operation": "expand", "expression": "(a+b+c+d+e+f)^60"}),
    ("solve_equation", {"equation": "x^7 + 3*x^5*sin(x) = exp(x) + tan(x^3)"}),
    ("regex_extract", {"pattern": "(a|aa)+$", "text": "a" * 5000 + "b"}),
    ("regex_extract", {"pattern": "(x+x+)+y", "text": "x" * 5000}),
    ("structured_validate", {"format": "yaml", "text": "a: &a [" + ",".join(["x"] * 9) + "]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))}),
    ("structured_validate", {"format": "xml", "text": '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">'
                             '<!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>'}),
    ("structured_validate", {"format": "xml", "text": '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                             "<r>&x;</r>"}),
    ("structured_validate", {"format": "json", "text": "[" * 100_000}),
    ("json_query", {"data": "[" * 5000 + "]" * 5000, "path": "[0][0]"}),
    ("prime_factorize", {"n": str(2**127 - 1)}), ("prime_factorize", {"n": "9" * 40}),
    ("exact_probability", {"operation": "binomial", "n": 2000, "k": 1000, "p": "1/7", "mode": "at_least"}),
    ("exact_probability", {"operation": "dice_sum", "dice": 50, "sides": 100, "target": 2525}),
    ("gcd_lcm", {"numbers": [10**100 - i for i in range(100)]}),
    ("graph_analyze", {"edges": [[i, i + 1] for i in range(9999)], "path_from": 0, "path_to": 9999}),
    ("decimal_finance", {"operation": "compound_interest", "principal": "1e100", "rate_percent": "1e100",
                         "years": 1000, "periods_per_year": 365}),
    ("text_analyze", {"text": "word " * 40_000}), ("hash_text", {"text": "x" * 200_000, "algorithm": "sha3_512"}),
    ("base64_codec", {"operation": "encode", "text": "é" * 200_000}),
]


@pytest.mark.parametrize(("tool", "args"), HOSTILE, ids=[f"{t}-{i}" for i, (t, _) in enumerate(HOSTILE)])
def test_hostile_inputs_are_bounded(registry: Registry, tool: str, args: dict[str, Any]) -> None:
    check_outcome(registry, tool, args)


def test_a_hung_worker_is_killed_and_replaced(registry: Registry) -> None:
    replaced = registry.pool.replaced
    outcome = registry.invoke("math", {"operation": "expand", "expression": "(a+b+c+d+e+f+g)^90"})
    assert (outcome.code, outcome.message) == ("timeout", f"math did not finish within {TIMEOUT_S:.1f} s")
    assert registry.pool.replaced == replaced + 1
    assert registry.invoke("calculate", {"expression": "6*7"}).text == "6*7 = 42"


# --- algebraic properties (in-process: fast) ------------------------------------------------------


def ok(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    outcome = execute(tool, args, 1_000_000)
    assert "code" not in outcome, outcome
    return outcome["result"]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3999))
def test_roman_round_trip(n: int) -> None:
    roman = ok("roman_numeral", {"value": n})["roman"]
    assert ok("roman_numeral", {"value": roman})["number"] == n


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200), st.booleans())
def test_base64_round_trip(text: str, url_safe: bool) -> None:
    encoded = ok("base64_codec", {"operation": "encode", "text": text, "url_safe": url_safe})["result"]
    decoded = ok("base64_codec", {"operation": "decode", "text": encoded, "url_safe": url_safe})
    assert decoded["result"] == text and decoded["utf8"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), min_size=2, max_size=6),
       st.lists(st.sampled_from(["+", "-", "*", "/"]), min_size=5, max_size=5))
def test_calculate_is_exact_rational_arithmetic(numbers: list[int], ops: list[str]) -> None:
    expression, expected = str(numbers[0]), Fraction(numbers[0])
    for op, n in zip(ops, numbers[1:], strict=False):
        op = "+" if op == "/" and n == 0 else op
        expression = f"({expression} {op} ({n}))"
        expected = expected + n if op == "+" else expected - n if op == "-" else expected * n if op == "*" \
            else expected / n
    result = ok("calculate", {"expression": expression})
    assert result["fraction"] == (f"{expected.numerator}/{expected.denominator}" if expected.denominator != 1
                                  else str(expected.numerator))


@settings(max_examples=50, deadline=None)
@given(st.dates(date(1900, 1, 1), date(2200, 1, 1)), st.integers(-20_000, 20_000))
def test_date_add_and_date_diff_agree(start: date, days: int) -> None:
    moved = ok("date_add", {"date": start.isoformat(), "days": days})["result"]
    assert moved == (start + timedelta(days=days)).isoformat()
    assert ok("date_diff", {"start": start.isoformat(), "end": moved})["days"] == days


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10**12), st.integers(1, 10**12))
def test_gcd_times_lcm_is_the_product(a: int, b: int) -> None:
    result = ok("gcd_lcm", {"numbers": [a, b]})
    assert int(result["gcd"]) * int(result["lcm"]) == a * b == math.gcd(a, b) * math.lcm(a, b)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 10**12))
def test_prime_factors_multiply_back(n: int) -> None:
    result = ok("prime_factorize", {"n": n})
    assert math.prod(int(p) for p in result["flat"]) == n


def _reference_distance(first: str, second: str) -> int:
    """The textbook dynamic programme (unit costs, code points): what text_compare computed before rapidfuzz."""
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i]
        for j, b in enumerate(second, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


@given(first=st.text(max_size=30), second=st.text(max_size=30), case_sensitive=st.booleans())
@settings(max_examples=300, deadline=None)
def test_text_compare_is_the_edit_distance(first: str, second: str, case_sensitive: bool) -> None:
    from mcp_service.tools.edit import text_compare
    out = text_compare({"first": first, "second": second, "case_sensitive": case_sensitive}).result
    a, b = (first, second) if case_sensitive else (first.casefold(), second.casefold())
    assert out["distance"] == _reference_distance(a, b)
    assert out["identical"] == (a == b)
