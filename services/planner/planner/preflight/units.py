"""Unit conversions: any unit pint knows (prefixes, plurals, compound units such as km/h or kilowatt hours),
checked with pint before the preflight routes a conversion (so "convert 3 apples to pears" goes to the
planner instead of failing in the tool). Units whose name means different amounts in different places
(ton, gallon, cup, calorie, acre ...) are left to the planner: the answer would be a guess."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from moe_core.contracts.tools import normalise_unit
from moe_core.contracts.unit_kinds import same_kind
from planner.preflight.german import UNIT_WORD, decimal_commas, units_in_english
from planner.preflight.lexicon import NUM, Question, numbers_from_words, plain_number, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
AMBIGUOUS = re.compile(r"^(?:(?:short |long |metric |us |imperial )?tons?|gallons?|gal|pints?|quarts?|cups?|"
                       r"calories?|cal|acres?|btus?|hp|horsepower|fluid ounces?|fl oz|barrels?|bushels?|stones?|"
                       r"therms?|years?|yrs?|months?|decades?|centur(?:y|ies)|millenni(?:um|a))$", I)
UNIT = r"[a-z\u00b0\u00b5\u00ba][a-z\u00b0\u00b5\u00ba/^\d\- ]{0,40}?"
SHAPES = [
    rf"(?:convert\s+)?(?P<v>{NUM})\s*(?P<f>{UNIT})\s+(?:to|into|in|as|in terms of)\s+(?P<t>{UNIT})",
    rf"how many\s+(?P<t>{UNIT})\s+(?:are|is)\s+(?:there\s+)?in\s+(?P<v>{NUM})\s*(?P<f>{UNIT})",
    rf"how many\s+(?P<t>{UNIT})\s+(?:are\s+(?:there\s+)?)?in\s+(?P<v>{NUM})\s*(?P<f>{UNIT})",
    rf"how many\s+(?P<t>{UNIT})\s+(?:are\s+)?(?:there\s+)?in\s+(?:a|an|one)\s+(?P<f>{UNIT})",
    rf"how many\s+(?P<t>{UNIT})\s+(?:is|are|make|makes)\s+(?P<v>{NUM})\s*(?P<f>{UNIT})",
    rf"(?P<v>{NUM})\s*(?P<f>{UNIT})\s+(?:is|are|equals?)\s+how many\s+(?P<t>{UNIT})",
]
GERMAN = [  # after the German unit names are read as English ones (german)
    rf"(?:rechne\s+)?(?P<v>{NUM})\s*(?P<f>{UNIT})\s+(?:in|nach)\s+(?P<t>{UNIT})(?:\s+um(?:rechnen)?)?",
    rf"wie ?viele?\s+(?P<t>{UNIT})\s+(?:sind|ergeben|entsprechen|hat|haben)\s+(?P<v>{NUM})\s*(?P<f>{UNIT})",
    rf"(?P<v>{NUM})\s*(?P<f>{UNIT})\s+(?:sind|ergeben|entsprechen)\s+wie ?viele?\s+(?P<t>{UNIT})",
]
SHAPES_RE = [re.compile(shape, I) for shape in SHAPES]  # compiled once (issue 52)
GERMAN_RE = [re.compile(shape, I) for shape in GERMAN]


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint  # about half a second, once, on the first conversion-shaped question

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def unit_name(text: str) -> str | None:
    """The unit as the tool will read it ("light year" -> "light_year"), or None when pint does not know it."""
    clean = " ".join(text.strip().split())
    if not clean or AMBIGUOUS.match(clean):
        return None
    for candidate in (clean, clean.replace(" ", "_").replace("-", "_"), re.sub(r"s$", "", clean).replace(" ", "_")):
        if _parse(candidate) is not None:
            return candidate
    return None


@lru_cache(maxsize=1024)
def _parse(text: str) -> Any:
    name = normalise_unit(text)
    if name is None:
        return None
    try:
        unit = _registry().parse_units(name)
    except Exception:  # pint raises many types for text that is not a unit: not a unit, that is all
        return None
    return unit


@lru_cache(maxsize=1024)
def units_convertible(source: str, target: str) -> bool:
    first, second = _parse(source), _parse(target)
    try:
        return first is not None and second is not None and bool(first.is_compatible_with(second)) and \
            same_kind(first, second, _registry())
    except Exception:  # an incompatible offset unit and the like: not convertible
        return False


def convert(q: Question) -> tuple[str, dict[str, Any]] | None:
    if q.quoted:
        return None
    body = numbers_from_words(strip_request(q.text))
    if body is None:
        return None
    readings = [(body, SHAPES_RE)]
    german = decimal_commas(body) if UNIT_WORD.search(body) else None
    if german is None and UNIT_WORD.search(body):
        return None  # "1,500 Meter": one and a half in German, fifteen hundred in English
    if german is not None:  # German unit names (and decimal commas) in the German frames
        readings.append((units_in_english(german), GERMAN_RE))
    for text, shapes in readings:
        hit = _converted(text, shapes)
        if hit is not None:
            return hit
    return None


def _converted(body: str, shapes: list[re.Pattern[str]]) -> tuple[str, dict[str, Any]] | None:
    for shape in shapes:
        m = shape.fullmatch(body)
        if not m:
            continue
        source, target = unit_name(m["f"]), unit_name(m["t"])
        if source and target and source != target and units_convertible(source, target):
            value = plain_number(m["v"]) if m.groupdict().get("v") else "1"
            return "unit_convert", {"value": value, "from_unit": source, "to_unit": target}
    return None
