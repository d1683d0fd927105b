"""German for the typed readers (issue 30: "German where the seeds' users write it"): dates ("14. März 2025"),
unit names, number-base names and decimal commas. Only what has one meaning is read: "Pfund" (500 g or a
pound?) and "1,500" (one and a half, or fifteen hundred?) are left to the planner."""

from __future__ import annotations

import re
from datetime import date

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
MONTHS = {"januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6, "juli": 7,
          "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12}
MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
DATE = rf"(?:(?:dem|den|der|am|vom)\s+)?\d{{1,2}}\.\s*(?:{MONTH})\s+\d{{4}}"
_PARTS = re.compile(rf"(?P<d>\d{{1,2}})\.\s*(?P<m>{MONTH})\s+(?P<y>\d{{4}})", I)

UNITS = {  # German unit names -> names the unit reader knows (longest first when matching)
    "kilometer pro stunde": "km/h", "stundenkilometer": "km/h", "meter pro sekunde": "m/s",
    "meilen pro stunde": "mph", "kilowattstunden": "kilowatt hours", "kilowattstunde": "kilowatt hour",
    "kilometern": "kilometers", "kilometer": "kilometers", "zentimetern": "centimeters", "zentimeter": "centimeters",
    "millimeter": "millimeters", "metern": "meters", "meter": "meters", "meilen": "miles", "meile": "mile",
    "fuß": "feet", "zoll": "inches",
    "kilogramm": "kilograms", "gramm": "grams", "milligramm": "milligrams",
    "unzen": "ounces", "unze": "ounce", "litern": "liters", "liter": "liters", "milliliter": "milliliters",
    "kubikmeter": "cubic meters", "stunden": "hours", "stunde": "hour", "minuten": "minutes", "minute": "minute",
    "sekunden": "seconds", "sekunde": "second", "tage": "days", "tagen": "days", "wochen": "weeks",
    "megajoule": "megajoules", "kilojoule": "kilojoules", "joule": "joules", "kilowatt": "kilowatts",
    "gibibyte": "gibibytes", "mebibyte": "mebibytes", "gigabyte": "gigabytes", "megabyte": "megabytes",
    "kilobyte": "kilobytes", "grad celsius": "degC", "grad fahrenheit": "degF",
}
UNIT_WORD = re.compile(r"\b(?:" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True)) + r")\b", I)
BASES = {"binär": 2, "binaer": 2, "dual": 2, "oktal": 8, "dezimal": 10, "hexadezimal": 16}


def parse_date(text: str) -> str | None:
    """An ISO date for "14. März 2025" (optionally after dem/den/am), else None (no year, no such day)."""
    m = _PARTS.search(text)
    if not m or not re.fullmatch(DATE, text.strip(), I):
        return None
    try:
        return date(int(m["y"]), MONTHS[m["m"].lower()], int(m["d"])).isoformat()
    except ValueError:
        return None


def decimal_commas(text: str) -> str | None:
    """German numbers with a decimal comma as the readers read them ("12,5" -> "12.5"); None when a comma or a
    point could be either a decimal mark or a thousands separator ("1,500", "1.500"), or both marks are used."""
    if re.search(r"\d[,.]\d{3}(?!\d)", text) or (re.search(r"\d\.\d", text) and re.search(r"\d,\d", text)):
        return None
    return re.sub(r"(?<=\d),(?=\d)", ".", text)


def units_in_english(text: str) -> str:
    return UNIT_WORD.sub(lambda m: UNITS[m[0].lower()], text)
