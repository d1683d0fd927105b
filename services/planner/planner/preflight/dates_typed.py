"""Date questions read by their typed values (issue 30): the dates (ISO, "14 March 2025", "March 14, 2025",
German "14. März 2025") and durations ("100 days", "three weeks", "12 Tage") are bound first and replaced by
placeholders; the skeleton left must put them in one of the three questions the date tools answer, and every
other word must be a known date or filler word (English or German), else the planner gets the question:
- days between two dates (date_diff): "between DATE and DATE", "from DATE to/until DATE", "zwischen DATE und DATE";
- the weekday of one date (day_of_week): a weekday word and one date, nothing else typed;
- a date shifted by a duration (date_add): "DURATION after/before DATE", "DATE plus/minus DURATION", "DURATION
  nach/vor DATE" (the order matters: "DATE is 100 days after which date?" asks the other way round)."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight import german
from planner.preflight.dates import DATE, parse_date
from planner.preflight.lexicon import COMMON, Question, numbers_from_words, stray_quote, strip_request

Hit = tuple[str, dict[str, Any]]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
GERMAN_DATE = rf"\d{{1,2}}\.\s*(?:{german.MONTH})\s+\d{{4}}"
DATES = re.compile(rf"(?<![\w.-])(?:{GERMAN_DATE}|{DATE})(?![\w-])", I)
UNITS = {"day": "days", "days": "days", "tag": "days", "tage": "days", "tagen": "days", "week": "weeks",
         "weeks": "weeks", "woche": "weeks", "wochen": "weeks", "month": "months", "months": "months",
         "monat": "months", "monate": "months", "monaten": "months", "year": "years", "years": "years",
         "jahr": "years", "jahre": "years", "jahren": "years", "business day": "business_days",
         "business days": "business_days", "working day": "business_days", "working days": "business_days",
         "werktag": "business_days", "werktage": "business_days", "werktagen": "business_days",
         "arbeitstage": "business_days", "arbeitstagen": "business_days"}
DURATION = re.compile(r"(?<![\w.])(?P<n>\d{1,6}|an?|one|ein(?:en|em)?)\s+(?P<u>" +
                      "|".join(sorted(UNITS, key=len, reverse=True)) + r")\b", I)
AFTER = r"(?:after|from|later than|past|nach|ab)"
BEFORE = r"(?:before|prior to|earlier than|vor)"
SHIFTS = [(re.compile(rf"DUR\s+{AFTER}\s+(?:the\s+|dem\s+)?DATE", I), 1),
          (re.compile(rf"DUR\s+{BEFORE}\s+(?:the\s+|dem\s+)?DATE", I), -1),
          (re.compile(r"DATE\s+(?:plus|\+)\s+DUR", I), 1), (re.compile(r"DATE\s+(?:minus|-|weniger)\s+DUR", I), -1)]
BETWEEN = re.compile(r"(?:between|zwischen)\s+(?:the\s+|dem\s+)?DATE\s+(?:and|und)\s+(?:the\s+|dem\s+)?DATE|"
                     r"(?:from|vom|von)\s+(?:the\s+|dem\s+)?DATE\s+(?:to|until|till|through|bis(?:\s+zum)?)\s+"
                     r"(?:the\s+|dem\s+)?DATE", I)
WEEKDAY = re.compile(r"\b(?:weekday|day of the week|wochentag)\b", I)
ASKED = {"days", "tage", "day", "tagen", "weeks", "wochen"}  # what a difference asks for
KNOWN = {"what", "which", "whats", "s", "is", "was", "will", "be", "it", "the", "a", "on", "date", "day", "of", "week",
         "weekday", "how", "many", "days", "weeks", "number", "count", "are", "there", "were", "between", "and", "from",
         "to", "until", "till", "through", "after", "before", "later", "than", "earlier", "prior", "past", "plus",
         "minus", "fall", "fell", "falls", "land", "lands", "did", "does", "do", "calendar", "in", "total",
         "welcher", "welches", "welchen", "wochentag", "ist", "war", "wird", "sein", "der", "die", "das", "dem", "den",
         "am", "datum", "tag", "tage", "tagen", "wochen", "wie", "viele", "liegen", "sind", "zwischen", "und", "vom",
         "von", "bis", "zum", "nach", "vor", "ab", "fällt", "fiel", "auf", "anzahl", "weniger", "haben", "hat",
         "business", "working", "werktage", "werktagen", "arbeitstage", "arbeitstagen"} | COMMON


def dates_typed(q: Question) -> Hit | None:
    body = strip_request(q.text)
    body = numbers_from_words(body) or ""
    if not body or q.quoted or stray_quote(body):
        return None
    found: list[str] = []
    for m in DATES.finditer(body):
        day = parse_date(m[0]) or german.parse_date(m[0])
        if day is None:
            return None  # a date without its year, or no such day
        found.append(day)
    skeleton = DATES.sub(" DATE ", body)
    durations = list(DURATION.finditer(skeleton))
    skeleton = " ".join(DURATION.sub(" DUR ", skeleton).split())
    if re.search(r"\d", skeleton):
        return None  # a number the reader did not bind
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", skeleton) if w not in ("DATE", "DUR")}
    if not words <= KNOWN:
        return None
    weekday = bool(WEEKDAY.search(skeleton))
    if len(found) == 2 and not durations and not weekday and words & ASKED and BETWEEN.search(skeleton):
        return "date_diff", {"start": found[0], "end": found[1]}
    if len(found) == 1 and not durations and weekday and not words & {"between", "zwischen", "after", "before", "nach",
                                                                        "vor", "plus", "minus"}:
        return "day_of_week", {"date": found[0]}
    if len(found) == 1 and len(durations) == 1 and not weekday:
        signs = [sign for shape, sign in SHIFTS if shape.search(skeleton)]
        if len(signs) == 1:
            n = 1 if not durations[0]["n"].isdigit() else int(durations[0]["n"])
            return "date_add", {"date": found[0], UNITS[durations[0]["u"].lower()]: signs[0] * n}
    return None
