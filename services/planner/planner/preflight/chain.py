"""Compound questions of two or three steps, answered by the `chain` tool: each step's "$prev" argument is the
previous step's value ("the weekday 100 days after 2024-01-01" = date_add, then day_of_week). Each step is
one of the single-step grammars, so a compound question is exactly as strict as its parts."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.dates import shift
from planner.preflight.lexicon import NUM, Question, numbers_from_words, strip_request
from planner.preflight.numbers import ROMAN
from planner.preflight.text import HASH_NAMES, HASHES, alternation, argument
from planner.preflight.units import convert

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
Hit = tuple[str, dict[str, Any]]
PREV = "$prev"
OPS = {"plus": "+", "+": "+", "minus": "-", "-": "-", "times": "*", "multiplied by": "*", "*": "*", "x": "*",
       "divided by": "/", "/": "/"}
THEN = {"multiply": "*", "multiplied": "*", "divide": "/", "divided": "/", "add": "+", "subtract": "-"}
OP_NAMES = alternation(OPS)
# compiled once: the preflight reads every question with them (issue 52)
WEEKDAY_AFTER = re.compile(r"(?:on )?(?:what|which) (?:day of the week|weekday|day) (?:is|was|will it be|will be|"
                           r"falls on) (?P<rest>.+)", I)
HASH_OF_BASE64 = re.compile(rf"(?:the )?(?P<alg>{HASH_NAMES})(?: hash| digest)? of (?:the )?base[ -]?64"
                            rf"(?: encoding| encoded form)? of (?P<t>.+)", I)
BASED = r"(?P<v>0x[0-9a-f]{1,32}|0b[01]{1,128}|0o[0-7]{1,40})"
PRIME_OF_BASED = [re.compile(shape, I) for shape in (
    rf"is {BASED} (?:a )?prime(?: number)?",
    rf"(?:the )?(?:prime factori[sz]ation|prime factors|factori[sz]ation) of {BASED}", rf"factori[sz]e {BASED}")]
ROMAN_ARITHMETIC = re.compile(rf"(?P<r>[IVXLCDM]{{1,15}}) (?P<op>{OP_NAMES}) (?P<n>{NUM})")
ROMAN_RE = re.compile(ROMAN)
CONVERT_THEN = re.compile(rf"(?P<c>.+?),? (?:and )?(?:then )?(?:(?P<v>multiply|multiplied|divide|divided|add|subtract)"
                          rf"(?: it)? (?:by |to )?(?P<n>{NUM})|(?P<d>double|halve|triple) it)", I)


def _chain(*steps: tuple[str, dict[str, Any]]) -> Hit:
    return "chain", {"steps": [{"tool": tool, "args": args} for tool, args in steps]}


def weekday_after(body: str) -> Hit | None:
    m = WEEKDAY_AFTER.fullmatch(body)
    args = shift(numbers_from_words(m["rest"]) or "") if m else None
    return _chain(("date_add", args), ("day_of_week", {"date": PREV})) if args else None


def hash_of_base64(q: Question, body: str) -> Hit | None:
    m = HASH_OF_BASE64.fullmatch(body)
    text = argument(q, m["t"]) if m else None
    if m is None or text is None:
        return None
    return _chain(("base64_codec", {"operation": "encode", "text": text}),
                  ("hash_text", {"text": PREV, "algorithm": HASHES[m["alg"].lower()]}))


def prime_of_based(body: str) -> Hit | None:
    m = next((found for shape in PRIME_OF_BASED if (found := shape.fullmatch(body))), None)
    if not m:
        return None
    return _chain(("number_base", {"value": m["v"], "to_base": 10}), ("prime_factorize", {"n": PREV}))


def roman_arithmetic(body: str) -> Hit | None:
    m = ROMAN_ARITHMETIC.fullmatch(body)
    if not m or not ROMAN_RE.fullmatch(m["r"]):
        return None
    return _chain(("roman_numeral", {"value": m["r"]}),
                  ("calculate", {"expression": f"{PREV} {OPS[m['op'].lower()]} {m['n'].replace(',', '')}"}))


def convert_then(q: Question, body: str) -> Hit | None:
    m = CONVERT_THEN.fullmatch(body)
    if not m:
        return None
    first = convert(Question(raw=m["c"], text=m["c"]))
    if first is None:
        return None
    if m["d"]:
        expression = {"double": f"{PREV} * 2", "halve": f"{PREV} / 2", "triple": f"{PREV} * 3"}[m["d"].lower()]
    else:
        expression = f"{PREV} {THEN[m['v'].lower()]} {m['n'].replace(',', '')}"
    return _chain(first, ("calculate", {"expression": expression}))


def compound(q: Question) -> Hit | None:
    body = strip_request(q.text)
    return (weekday_after(body) or hash_of_base64(q, body) or prime_of_based(body) or roman_arithmetic(body)
            or (None if q.quoted else convert_then(q, body)))
