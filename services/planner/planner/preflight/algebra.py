"""Equations and calculus for the preflight: "solve 2x + 3 = 7", "derivative of x^3 + 2x", "integrate x^2
from 0 to 3". The expression must be maths through and through (numbers, operators, one-letter variables)."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.lexicon import NUM, Question, balanced, plain_number, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
FUNCS = r"sqrt|cbrt|exp|ln|log10|log2|log|sin|cos|tan|asin|acos|atan|sinh|cosh|tanh|abs|pi"
MATHS = re.compile(rf"^(?:[\d\s.+\-*/^%()=,]|{FUNCS}|(?<![a-z])[a-z](?![a-z]))+$", I)
Hit = tuple[str, dict[str, Any]]


def _maths(text: str) -> bool:
    return bool(MATHS.fullmatch(text)) and balanced(text) and bool(re.search(r"[a-z]", text, I))


def solve(q: Question) -> Hit | None:
    m = re.fullmatch(r"solve\s+(?:for\s+(?P<v>[a-z])\s*[:,]?\s+)?(?P<eq>[^=]+=[^=]+?)(?:\s+for\s+(?P<v2>[a-z]))?",
                     q.text, I)
    if not m or not _maths(m["eq"]):
        return None
    args: dict[str, Any] = {"equation": " ".join(m["eq"].split())}
    if m["v"] or m["v2"]:
        args["variable"] = m["v"] or m["v2"]
    return "solve_equation", args


def calculus(q: Question) -> Hit | None:
    body = strip_request(q.text)
    m = re.fullmatch(r"(?:the )?(?:derivative of|differentiate|d/d(?P<d>[a-z]) (?:of )?)\s*(?P<e>.+?)"
                     r"(?: with respect to (?P<v>[a-z]))?", body, I)
    if m and _maths(m["e"]):
        args: dict[str, Any] = {"operation": "derivative", "expression": m["e"].strip()}
        if m["v"] or m["d"]:
            args["variable"] = m["v"] or m["d"]
        return "math", args
    m = re.fullmatch(rf"(?:the )?(?:integral of|integrate)\s+(?P<e>.+?)(?: d(?P<v>[a-z]))?"
                     rf"(?: from (?P<a>{NUM}|pi) to (?P<b>{NUM}|pi|oo))?", body, I)
    if m and _maths(m["e"]):
        args = {"operation": "integral", "expression": m["e"].strip()}
        if m["v"]:
            args["variable"] = m["v"]
        if m["a"] is not None:
            args.update(lower=plain_number(m["a"]), upper=plain_number(m["b"]))
        return "math", args
    return None
