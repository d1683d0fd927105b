"""Typed values for the composition grammar (compose.py): numbers in a language's own format ("2.400,50" in
German, "2,400.50" in English), integers, percentages, fractions in words, amounts, dates, Roman numerals, 3x3
matrices. Each reader takes the whole of a slot's text and returns its value as the tools read it, or None: a slot
either binds as a whole or the reading fails."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from planner.preflight import german
from planner.preflight.dates import parse_date
from planner.preflight.numbers import ROMAN

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
Reader = Callable[[str, Mapping[str, Any]], Any]


def number(text: str, lang: Mapping[str, Any]) -> str | None:
    """A number written the language's way, as a plain decimal string ("2.400,50" in German -> "2400.50").
    A lone group mark before three digits ("1,500" in German, "1.500" in English) is read as the language's
    own group mark only when that mark is the group mark; the other reading ("1,500" as 1.5 in German) hands over."""
    group, decimal = re.escape(lang["numbers"]["group"]), re.escape(lang["numbers"]["decimal"])
    text = text.strip()
    shape = rf"[-+\u2212]?(?:\d{{1,3}}(?:{group}\d{{3}})+|\d+)(?:{decimal}\d+)?|[-+]?{decimal}\d+"
    if not re.fullmatch(shape, text):
        return None
    body = text.replace("\u2212", "-").lstrip("+")
    if re.fullmatch(rf"-?[1-9]\d{{0,2}}{decimal}\d{{3}}", body):
        return None  # "1,500" in German, "1.500" in English: a decimal mark, or the other language's group mark?
    return body.replace(lang["numbers"]["group"], "").replace(lang["numbers"]["decimal"], ".")


def integer(text: str, lang: Mapping[str, Any]) -> str | None:
    value = number(text, lang)
    return value if value is not None and re.fullmatch(r"-?\d+", value) else None


def ordinal(text: str, lang: Mapping[str, Any]) -> str | None:
    """"20th", "21st", German "15." -> "20"."""
    m = re.fullmatch(r"(\d{1,3})(?:st|nd|rd|th|\.)", text.strip(), I)
    return str(int(m[1])) if m else None


def percent(text: str, lang: Mapping[str, Any]) -> str | None:
    m = re.fullmatch(r"(?P<n>.+?)\s?(?:%|percent|per cent|prozent)", text.strip(), I)
    return number(m["n"], lang) if m else None


def fraction(text: str, lang: Mapping[str, Any]) -> str | None:
    """A fraction in words as "n/d": "zwei Drittel" -> "2/3", "a third" -> "1/3", "die Hälfte" -> "1/2" (the
    language's `fractions` in languages.yaml: numerator words, denominator words, and phrases of their own)."""
    data = lang.get("fractions")
    words = " ".join(text.split()).lower()
    if not data or not words:
        return None
    if words in data.get("alone", {}):
        return str(data["alone"][words])
    m = re.fullmatch(r"(?P<n>\S+) (?P<d>\S+)", words)
    if not m or m["d"] not in data["words"]:
        return None
    numerator = data.get("numerators", {}).get(m["n"]) or integer(m["n"], lang)
    return f"{numerator}/{data['words'][m['d']]}" if numerator and int(numerator) > 0 else None


def amount(text: str, lang: Mapping[str, Any]) -> str | None:
    """A number with at most one currency mark before or after it ("$84", "450 euros", "2.400 Euro")."""
    marks = "|".join(lang.get("currencies", []))
    m = re.fullmatch(rf"(?:(?:{marks})\s?)?(?P<n>[^\s$\u20ac\u00a3]+)(?:\s?(?:{marks}))?", text.strip(), I)
    if not m or len(re.findall(rf"(?:{marks})", text, I)) > 1:
        return None
    return number(m["n"], lang)


def date(text: str, lang: Mapping[str, Any]) -> str | None:
    """ISO, English ("1 January 2027", "March 10, 2026"), German ("14. März 2025") dates; day.month.year
    ("26.11.2026") only in a language that writes dates so (languages.yaml: dotted_dates)."""
    text = text.strip()
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text)
    if m and not lang.get("dotted_dates"):
        return None  # "05.03.2026" in English: the 5th of March or May the 3rd?
    if m:
        from datetime import date as day

        try:
            return day(int(m[3]), int(m[2]), int(m[1])).isoformat()
        except ValueError:
            return None
    return parse_date(text) or german.parse_date(text)


def roman(text: str, lang: Mapping[str, Any]) -> str | None:
    text = text.strip()
    return text if text and re.fullmatch(ROMAN, text) else None


def matrix3(text: str, lang: Mapping[str, Any]) -> list[str] | None:
    """A 3x3 matrix: "[[1, 2, 3], [0, 4, 5], [1, 0, 6]]" or rows split by semicolons ("2 1 0; 1 3 1; 0 1 4")."""
    text = text.strip()
    if text.startswith("["):
        rows = re.fullmatch(r"\[\s*(\[[^\[\]]*\])\s*,\s*(\[[^\[\]]*\])\s*,\s*(\[[^\[\]]*\])\s*\]", text)
        parts = [re.split(r"\s*,\s*", r.strip("[] ")) for r in rows.groups()] if rows else []
    else:
        parts = [r.split() for r in text.split(";")]
    cells = [number(c, {"numbers": {"group": "\u2009", "decimal": "."}}) for row in parts for c in row]
    if len(parts) != 3 or any(len(row) != 3 for row in parts) or None in cells:
        return None
    return [c for c in cells if c is not None]


def digits(text: str, lang: Mapping[str, Any]) -> str | None:
    """A whole number in some base's digits ("-3b", "10110")."""
    text = text.strip()
    return text if re.fullmatch(r"-?[0-9a-z]{1,60}", text, I) else None


READERS: dict[str, Reader] = {"num": number, "int": integer, "ord": ordinal, "pct": percent, "frac": fraction,
                              "money": amount,
                              "date": date, "roman": roman, "matrix3": matrix3, "digits": digits}
