"""Dates, durations, calendars and time zones. Dates are read with dateutil's parser (ISO dates, "14 March
2025", "Feb 14, 2026", "July 4th, 1776") and must carry their year; all-numeric dates other than ISO
(03/04/2025: March or April?) are left to the planner."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from dateutil import parser as dateparser

from planner.preflight.lexicon import Question, numbers_from_words, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
         r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
DATE = (rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|{MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
        rf"|(?:the )?\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{MONTH}\.?,? \d{{4}})")
UNITS = r"(?P<u>business days?|working days?|weekdays?|days?|weeks?|months?|years?)"
AMOUNT = rf"(?P<n>\d{{1,6}}|an?|one)\s+{UNITS}"


def parse_date(text: str) -> str | None:
    """An ISO date for a written date, or None (no year, an impossible day, or not a date)."""
    clean = re.sub(r"^the |\bof\b", "", text.strip(), flags=I)
    if not re.fullmatch(DATE, text.strip(), I) or not re.search(r"\d{4}", clean):
        return None
    try:
        parsed = dateparser.parse(clean, default=datetime(1, 1, 1))
    except (ValueError, OverflowError):
        return None
    return parsed.date().isoformat()


def _amount(m: re.Match[str]) -> tuple[str, int]:
    n = 1 if m["n"].lower() in ("a", "an", "one") else int(m["n"])
    unit = m["u"].lower()
    key = "business_days" if unit.startswith(("business", "working", "weekday")) else unit.rstrip("s") + "s"
    return key, n


def _first(patterns: tuple[re.Pattern[str], ...], body: str) -> re.Match[str] | None:
    """The first of the patterns that reads the whole body (compiled once: DATE alone is ~700 characters, and
    building and hashing such a pattern on every question cost more than the match, issue 52)."""
    for pattern in patterns:
        m = pattern.fullmatch(body)
        if m:
            return m
    return None


DATE_DIFF = tuple(re.compile(p, I) for p in (
    rf"(?:how many|(?:the )?number of|count the)\s+(?:calendar |business |working )?(?:days|weeks|"
    rf"months|years|weekdays)\s+(?:are\s+|were\s+|will there be\s+)?(?:there\s+)?(?:between|from)\s+"
    rf"(?P<a>{DATE})\s+(?:and|to|until|till)\s+(?P<b>{DATE})",
    rf"(?:days|number of days) (?:between|from) (?P<a>{DATE}) (?:and|to) (?P<b>{DATE})"))
WEEKDAY = tuple(re.compile(p, I) for p in (
    rf"(?:on\s+)?(?:what|which)\s+(?:day of the week|weekday|day)\s+(?:is|was|will be|falls on|fell on)\s+"
    rf"(?P<d>{DATE})",
    rf"(?:on\s+)?(?:what|which)\s+(?:day of the week|weekday)\s+(?:does|did|will)\s+(?P<d>{DATE})"
    rf"\s+(?:fall|fall on|land on|be)",
    rf"(?:the )?(?:day of the week|weekday) (?:of|for) (?P<d>{DATE})"))
WEEKDAY_ASKED = (re.compile(r"(?:what|which)\s+(?:day of the week|weekday|day)\s+.*", I),)
WEEKDAY_IS = (re.compile(rf"(?:what|which)\s+(?:day of the week|weekday|day)\s+(?:is|was)\s+(?P<d>{DATE})", I),)
SHIFT_AFTER = (re.compile(rf"{AMOUNT}\s+(?P<dir>after|from|before|later than|earlier than|prior to)\s+"
                          rf"(?P<d>{DATE})", I),)
SHIFT_PLUS = (re.compile(rf"(?P<d>{DATE})\s+(?P<dir>plus|\+|minus|-)\s+{AMOUNT}", I),)
DATE_ASKED = re.compile(r"^(?:what(?:'s| is| was| will be)? )?(?:the )?(?:date|day) (?:is |was |will it be |will be )?",
                        I)


def date_diff(q: Question) -> tuple[str, dict[str, Any]] | None:
    m = _first(DATE_DIFF, strip_request(q.text))
    start, end = (parse_date(m["a"]), parse_date(m["b"])) if m else (None, None)
    return ("date_diff", {"start": start, "end": end}) if start and end else None


def weekday(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    m = _first(WEEKDAY, body)
    if not m and _first(WEEKDAY_ASKED, body):
        m = _first(WEEKDAY_IS, body)
    day = parse_date(m["d"]) if m else None
    return ("day_of_week", {"date": day}) if day else None


def shift(body: str) -> dict[str, Any] | None:
    """date_add arguments for "N units after/before DATE" and "DATE plus/minus N units" (body only)."""
    m = _first(SHIFT_AFTER, body) or _first(SHIFT_PLUS, body)
    day = parse_date(m["d"]) if m else None
    if not m or not day:
        return None
    sign = -1 if m["dir"].lower() in ("before", "minus", "-", "earlier than", "prior to") else 1
    key, n = _amount(m)
    return {"date": day, key: sign * n}


def date_add(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = numbers_from_words(strip_request(q.text)) or ""
    body = DATE_ASKED.sub("", body)
    args = shift(body)
    return ("date_add", args) if args else None


CALENDAR_YEAR = tuple(re.compile(p, I) for p in (
    r"(?:is|was|will)\s+(?:the year\s+)?(?P<y>\d{1,4})\s+(?:be\s+)?a leap year",
    r"(?:when|what date) (?:is|was|will be|does) easter(?: sunday)?(?: fall)?(?: in)? (?P<y>\d{4})",
    r"(?:the )?date of easter(?: sunday)? (?:in )?(?P<y>\d{4})"))
CALENDAR_MONTH = (re.compile(rf"how many days (?:are |were |will there be )?(?:there )?in (?P<m>{MONTH})\.? "
                             rf"(?P<y>\d{{4}})", I),)


def calendar(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    m = _first(CALENDAR_YEAR, body)
    if m:
        return "calendar_facts", {"year": int(m["y"])}
    m = _first(CALENDAR_MONTH, body)
    if m:
        return "calendar_facts", {"year": int(m["y"]), "month": datetime.strptime(m["m"][:3].title(), "%b").month}
    return None


@lru_cache(maxsize=1)
def zones() -> dict[str, str]:
    """IANA zone names and their cities, lower case: "europe/london", "london", "new york" -> the zone."""
    table: dict[str, str] = {}
    cities: dict[str, set[str]] = {}
    for name in available_timezones():
        if re.fullmatch(r"[A-Z]{3,4}(?:\d[A-Z]{3})?", name):
            continue  # EST, MST, CET, EST5EDT ...: "EST" in July usually means New York's time; say the zone
        table[name.lower()] = name
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/")):
            cities.setdefault(name.rsplit("/", 1)[1].replace("_", " ").lower(), set()).add(name)
    for city, names in cities.items():
        if len(names) == 1:  # a city name two zones share is ambiguous
            table.setdefault(city, names.pop())
    for alias in ("utc", "gmt"):
        table[alias] = alias.upper()
    return table


ZONE = r"(?P<{}>[a-z][a-z_/ +\-]{{1,40}}?)"
TIME = r"(?P<h>\d{1,2})(?::(?P<mi>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?|(?P<noon>noon|midday|midnight)"


def _clock(m: re.Match[str]) -> str | None:
    if m["noon"]:
        return "12:00" if m["noon"].lower() in ("noon", "midday") else "00:00"
    hour, minute = int(m["h"]), int(m["mi"] or 0)
    if m["ap"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m["ap"].lower().startswith("p") else 0)
    elif not m["mi"]:
        return None  # "at 3" without am/pm or minutes: not a clear time
    return f"{hour:02d}:{minute:02d}" if hour < 24 and minute < 60 else None


_ZONE_A, _ZONE_B, _TIME_A = ZONE.format("f"), ZONE.format("to"), f"(?:{TIME})"
TIMEZONE_SHAPES = [re.compile(shape, I) for shape in (  # compiled once: each is ~1,000 characters (issue 52)
    rf"(?:convert\s+)?(?P<d>{DATE})(?:,| at)?\s+{_TIME_A}\s+(?:in\s+|from\s+)?{_ZONE_A}(?: time)?\s+(?:to|in|into)\s+"
    rf"{_ZONE_B}(?: time)?",
    rf"(?:convert\s+)?{_TIME_A}\s+(?:in\s+)?{_ZONE_A}(?: time)?\s+on\s+(?P<d>{DATE})\s+(?:to|in|into)\s+"
    rf"{_ZONE_B}(?: time)?",
    rf"(?:the )?time in {_ZONE_B} when it(?:'s| is) {_TIME_A}(?: in)? {_ZONE_A}(?: time)? on (?P<d>{DATE})",
    rf"when it(?:'s| is) {_TIME_A} in {_ZONE_A} on (?P<d>{DATE}),? what time is it in {_ZONE_B}",
)]


def timezone(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    for shape in TIMEZONE_SHAPES:
        m = shape.fullmatch(body)
        if not m:
            continue
        day, clock = parse_date(m["d"]), _clock(m)
        source, target = zones().get(m["f"].strip().lower()), zones().get(m["to"].strip().lower())
        if day and clock and source and target and source != target:
            return "timezone_convert", {"datetime": f"{day}T{clock}", "from_tz": source, "to_tz": target}
    return None


TIME_NOW = tuple(re.compile(p, I) for p in (
    r"(?:what )?time is it(?: now| right now)? in (?P<z>[a-z][a-z_/ +\-]{1,40}?)(?: now| right now)?",
    r"(?:the )?(?:current |local )?time(?: now| right now)? in (?P<z>[a-z][a-z_/ +\-]{1,40}?)(?: now| right now)?"))


def current_time(q: Question) -> tuple[str, dict[str, Any]] | None:
    """"What time is it in Tokyo?": the time_facts tool reads the clock (the answer names the moment)."""
    body = strip_request(q.text)
    m = _first(TIME_NOW, body)
    zone = zones().get(m["z"].strip().lower()) if m else None
    return ("time_facts", {"timezone": zone}) if zone else None


def today_free(text: str) -> bool:
    """True when the text names no relative day (today, tomorrow ...), which a preflight cannot resolve."""
    return not RELATIVE_DAY.search(text)


RELATIVE_DAY = re.compile(r"\b(?:today|tomorrow|yesterday|now|tonight|(?:next|last|this) (?:week|month|year|monday|"
                          r"tuesday|wednesday|thursday|friday|saturday|sunday|weekend))\b", I)


__all__ = ["calendar", "current_time", "date_add", "date_diff", "parse_date", "shift", "timezone", "today_free",
           "weekday"]
