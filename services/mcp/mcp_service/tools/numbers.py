"""prime_factorize (bounded to 40 digits), gcd_lcm, roman_numeral."""

from __future__ import annotations

import math
import re
from functools import reduce
from typing import Any

from sympy import factorint, isprime

from mcp_service.tools.base import ToolError, ToolOutput, wrong

MAX_DIGITS = 40
ROMAN = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
         (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
CANONICAL_ROMAN = re.compile(r"^M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise wrong(f"{name} must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if not text.isdigit() or len(text) > MAX_DIGITS:
        raise wrong(f"{name} must be a whole number of at most {MAX_DIGITS} digits")
    return int(text)


def prime_factorize(args: dict[str, Any]) -> ToolOutput:
    n = _whole(args["n"], "n")
    if not 1 <= n <= 10**MAX_DIGITS:
        raise wrong(f"n must be between 1 and 10^{MAX_DIGITS}")
    factors = {int(p): int(e) for p, e in factorint(n).items()}
    prime = n > 1 and isprime(n)
    times = " \u00d7 "
    product = times.join(f"{p}{str(e).translate(SUPERSCRIPT) if e > 1 else ''}" for p, e in sorted(factors.items()))
    if n == 1:
        text = "1 has no prime factors."
    elif prime:
        text = f"{n:,} is prime."
    else:
        text = f"{n:,} = {product} (not prime)."
    return ToolOutput(text, {"n": str(n), "prime": prime,
                             "factors": [{"prime": str(p), "exponent": e} for p, e in sorted(factors.items())],
                             "flat": [str(p) for p, e in sorted(factors.items()) for _ in range(e)][:200]})


def gcd_lcm(args: dict[str, Any]) -> ToolOutput:
    numbers = [_whole(v, "each number") if not isinstance(v, int) else v for v in args["numbers"]]
    gcd = math.gcd(*numbers)
    lcm = reduce(math.lcm, numbers) if all(numbers) else 0
    if lcm.bit_length() > 13_000:
        raise ToolError("result_too_large", "the lcm has more than about 4000 digits")
    shown = ", ".join(f"{n:,}" for n in numbers[:10]) + ("…" if len(numbers) > 10 else "")
    lcm_text = f"{lcm:,}" if len(str(lcm)) <= 300 else f"a {len(str(abs(lcm)))}-digit number"
    return ToolOutput(f"gcd({shown}) = {gcd:,}; lcm = {lcm_text}.",
                      {"numbers": [str(n) for n in numbers], "gcd": str(gcd), "lcm": str(lcm)})


def to_roman(number: int) -> str:
    out = []
    for value, letters in ROMAN:
        count, number = divmod(number, value)
        out.append(letters * count)
    return "".join(out)


def from_roman(text: str) -> int:
    upper = text.strip().upper()
    if not upper or not CANONICAL_ROMAN.match(upper):
        raise wrong(f"{text.strip()!r} is not a valid (canonical) Roman numeral")
    values = {letters: value for value, letters in ROMAN}
    total, i = 0, 0
    while i < len(upper):
        pair = upper[i:i + 2]
        if len(pair) == 2 and pair in values:
            total, i = total + values[pair], i + 2
        else:
            total, i = total + values[upper[i]], i + 1
    return total


def roman_numeral(args: dict[str, Any]) -> ToolOutput:
    value = args["value"]
    if isinstance(value, str) and not value.strip().isdigit():
        number = from_roman(value)
        return ToolOutput(f"{value.strip().upper()} = {number}", {"roman": value.strip().upper(), "number": number})
    number = _whole(value, "value")
    if not 1 <= number <= 3999:
        raise wrong("Roman numerals cover 1 to 3999")
    roman = to_roman(number)
    return ToolOutput(f"{number} = {roman}", {"roman": roman, "number": number})
