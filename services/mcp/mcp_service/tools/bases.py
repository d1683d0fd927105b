"""number_base (integers between bases 2-36, with 0x/0b/0o prefixes) and number_words (English words)."""

from __future__ import annotations

import string
from typing import Any

from mcp_service.tools.base import ToolOutput, wrong

DIGITS = string.digits + string.ascii_uppercase
PREFIXES = {"0x": 16, "0b": 2, "0o": 8}
NAMES = {2: "binary", 8: "octal", 10: "decimal", 16: "hexadecimal"}
MAX_DIGITS = 256


def parse_integer(text: str, base: int | None) -> tuple[int, int]:
    """(value, base) of an integer written in `base`; a 0x/0b/0o prefix names the base when none is given."""
    clean = text.strip().replace("_", "").replace(" ", "")
    sign = -1 if clean.startswith("-") else 1
    clean = clean.lstrip("+-")
    prefix = clean[:2].lower()
    if prefix in PREFIXES and (base is None or base == PREFIXES[prefix]):
        base, clean = PREFIXES[prefix], clean[2:]
    base = base or 10
    if not clean or len(clean) > MAX_DIGITS:
        raise wrong(f"a number of 1 to {MAX_DIGITS} digits is needed")
    bad = [c for c in clean.upper() if c not in DIGITS[:base]]
    if bad:
        raise wrong(f"{bad[0]!r} is not a digit in base {base}")
    return sign * int(clean, base), base


def to_base(value: int, base: int) -> str:
    if value == 0:
        return "0"
    digits, rest = [], abs(value)
    while rest:
        rest, digit = divmod(rest, base)
        digits.append(DIGITS[digit])
    return ("-" if value < 0 else "") + "".join(reversed(digits))


def _label(base: int) -> str:
    return f"base {base}" + (f", {NAMES[base]}" if base in NAMES else "")


def number_base(args: dict[str, Any]) -> ToolOutput:
    value, source = parse_integer(str(args["value"]), args.get("from_base"))
    targets = args.get("to_base", [2, 8, 10, 16])
    targets = [targets] if isinstance(targets, int) else targets
    shown = {str(base): to_base(value, base) for base in targets}
    written = to_base(value, source)
    text = "; ".join(f"{written} ({_label(source)}) = {shown[str(base)]} ({_label(base)})" for base in targets)
    return ToolOutput(text + ".", {"value": str(value), "from_base": source, "in_bases": shown})


ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = [(10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]


def words(n: int) -> str:
    """Short-scale English words: 1234 -> 'one thousand two hundred thirty-four'."""
    if n < 0:
        return "minus " + words(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + (f"-{ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{ONES[n // 100]} hundred" + (f" {words(n % 100)}" if n % 100 else "")
    for size, name in SCALES:
        if n >= size:
            return f"{words(n // size)} {name}" + (f" {words(n % size)}" if n % size else "")
    raise AssertionError("unreachable")


def number_words(args: dict[str, Any]) -> ToolOutput:
    value = args["value"]
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 10**18:
        raise wrong("value must be a whole number below 10^18 in size")
    spelled = words(value)
    return ToolOutput(f"{value:,} in words is {spelled!r}.", {"value": value, "words": spelled})
