"""Number bases: "0xFF in decimal", "255 to binary", "the hexadecimal representation of 255", "the octal form
of five hundred" (number words are decimal numbers). The value must be a numeral of its source base."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.lexicon import Question, numbers_from_words, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
Hit = tuple[str, dict[str, Any]]
BASES = {"binary": 2, "bin": 2, "octal": 8, "oct": 8, "decimal": 10, "dec": 10, "hexadecimal": 16, "hex": 16,
         "binär": 2, "binaer": 2, "oktal": 8, "dezimal": 10, "hexadezimal": 16}
BASE = (r"(?:hexadezimal|binär|binaer|oktal|dezimal|binary|bin|octal|oct|decimal|dec|hexadecimal|hex|"
        r"base[ -]?(?P<{}>\d{{1,2}})|basis[ -]?(?P<{}_>\d{{1,2}}))")


def _base(name: str, digits: str | None) -> int | None:
    value = int(digits) if digits else BASES.get(name.lower())
    return value if value is not None and 2 <= value <= 36 else None


def _valid_in(raw: str, base: int | None) -> bool:
    try:
        int(raw, base or 10)
    except ValueError:
        return False
    return True


def number_base(q: Question) -> Hit | None:
    body = strip_request(q.text)
    hit = _number_base(body)
    spelled = numbers_from_words(body)  # "the octal form of five hundred": number words are decimal numbers
    if hit is None and spelled and spelled != body:
        hit = _number_base(spelled)
        return hit if hit and hit[1].get("from_base", 10) == 10 and not re.search(r"0[xbo]", spelled, I) else None
    return hit


def _shapes() -> list[re.Pattern[str]]:
    value = r"(?P<v>0x[0-9a-f]+|0b[01]+|0o[0-7]+|[0-9a-z]{1,64})"
    src, dst = BASE.format("fb", "fb"), BASE.format("tb", "tb")
    return [re.compile(shape, I) for shape in [rf"(?:convert )?(?P<src>{src}) {value} (?:to|in|into|as) (?P<dst>{dst})",
              rf"(?:convert )?{value} (?:from )?(?P<src>{src}) (?:to|in|into|as) (?P<dst>{dst})",
              rf"(?:convert )?{value} (?:to|in|into|as) (?P<dst>{dst})(?: numbers?| notation)?",
              rf"(?:convert )?{value} (?:written|expressed|represented|shown) (?:in|as) (?P<dst>{dst})",
              rf"(?:how|what) (?:does|do|would|will) {value} look(?: like)? (?:in|as) (?P<dst>{dst})",
              rf"(?:the )?(?P<dst>{dst})(?: representation| form| equivalent| notation| value)? (?:of|for) {value}",
              # German: "255 in Binär", "255 als Hexadezimalzahl", "Binärdarstellung von 200", "ff von hex in dezimal"
              rf"{value} (?:von |aus )?(?P<src>{src})(?:zahl)? (?:in|nach|als|ins) (?P<dst>{dst})(?:zahl|system)?",
              rf"{value} (?:in|nach|als|ins|im) (?P<dst>{dst})(?:zahl|system|darstellung|e zahl|er darstellung)?",
              rf"(?:die )?(?P<dst>{dst})(?:darstellung|form|zahl|e darstellung|e form)? (?:von|für) {value}"]]


SHAPES = _shapes()  # compiled once: the preflight reads every question with them (issue 52)


def _number_base(body: str) -> Hit | None:
    for shape in SHAPES:
        m = shape.fullmatch(body)
        if not m:
            continue
        raw = m["v"]
        source = _base(m["src"], m["fb"] or m["fb_"]) if m.groupdict().get("src") else None
        target = _base(m["dst"], m["tb"] or m["tb_"])
        prefixed = re.fullmatch(r"0[xbo].+", raw, I)
        if source is None and not prefixed:
            if not raw.isdigit():
                return None  # "ABC to decimal": which base? say it
            source = 10
        if target is None or (source is not None and prefixed and {"x": 16, "b": 2, "o": 8}[raw[1].lower()] != source):
            return None
        args: dict[str, Any] = {"value": raw, "to_base": target}
        if source is not None and not prefixed:
            args["from_base"] = source
        if source == target or (not prefixed and not _valid_in(raw, source)):
            return None  # "ten from hex": not a numeral of that base
        return "number_base", args
    return None
