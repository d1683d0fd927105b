"""Statistics questions read by their typed values (issue 30): one list of two or more numbers ("4, 8, 15 and
16", "4 8 15", German "4; 8; 15") is bound first; a word naming what the statistics tool computes (mean,
average, median, standard deviation, variance; German Mittelwert, Durchschnitt, Median, Standardabweichung,
Varianz) must be there, and every other word must be a known filler word, else the planner gets the question.
A number with a comma inside ("1,234": thousands or a German decimal?) hands over."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.lexicon import COMMON, Question, stray_quote, strip_request

Hit = tuple[str, dict[str, Any]]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
NUMBER = r"-?\d+(?:\.\d+)?"
LIST = re.compile(rf"(?<![\w.,-]){NUMBER}(?:(?:\s*[,;]\s*|\s+(?:and|und|&)\s+|,\s*(?:and|und)\s+|\s+){NUMBER})+"
                  rf"(?![\w.,-])", I)
ASKS = {"mean", "average", "avg", "median", "deviation", "stdev", "variance", "mittelwert", "durchschnitt",
        "standardabweichung", "varianz", "averages", "arithmetische", "arithmetic", "arithmetischer", "arithmetisches"}
FILLER = {"the", "of", "these", "those", "numbers", "values", "data", "list", "set", "sample", "population",
          "standard", "what", "whats", "is", "s", "me", "for", "you", "can", "could", "find", "give", "calculate",
          "compute", "get", "tell", "and", "a", "an", "series", "figures", "scores", "std", "dev",
          "von", "der", "die", "das", "den", "zahlen", "werte", "ist", "was", "berechne", "bitte", "mittel",
          "liste", "folgenden", "dieser", "diese", "following", "how", "much", "out", "work", "please"} | COMMON


def statistics_typed(q: Question) -> Hit | None:
    body = strip_request(q.text)
    if q.quoted or stray_quote(body):
        return None
    lists = LIST.findall(body)
    if len(lists) != 1:
        return None
    rest = LIST.sub(" ", body)
    if re.search(r"\d", rest):
        return None  # a number outside the list
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", rest)}
    if not words & ASKS or not words <= ASKS | FILLER:
        return None
    if re.search(r"\d,\d", lists[0]):
        return None  # "1,234": one number or two?
    values = re.findall(NUMBER, lists[0])
    return ("statistics_calc", {"values": values}) if 2 <= len(values) <= 1000 else None
