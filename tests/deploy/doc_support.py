"""Reading the hand-written docs for the tests that check them against the code: which files, their
Markdown tables, the values and counts they state."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def fleetlib_config() -> Any:
    """deploy/local/fleetlib/config.py (tests/conftest.py puts deploy/local on the path)."""
    from fleetlib import config

    return config


def doc_paths() -> list[str]:
    """Every document a newcomer reads: the READMEs and docs/*.md (relative paths)."""
    found = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("services/*/README.md")),
             *sorted(REPO.glob("deploy/*/README.md")), REPO / "compose" / "README.md", REPO / "helm" / "README.md",
             REPO / "bench" / "README.md"]
    return [str(p.relative_to(REPO)) for p in found if p.is_file()]


def read(path: str) -> str:
    return (REPO / path).read_text()


@dataclass(frozen=True)
class Table:
    path: str
    line: int  # of the header, 1-based
    header: list[str]
    rows: list[list[str]]

    def where(self, row: list[str]) -> str:
        return f"{self.path}:{self.line} row {row[0]!r}"


def cells(line: str) -> list[str]:
    """The cells of a table line; `\\|` is a pipe inside a cell."""
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def tables(path: str) -> list[Table]:
    lines = read(path).splitlines()
    out, i = [], 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]) \
                and "-" in lines[i + 1]:
            start, header, rows = i, cells(lines[i]), []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            out.append(Table(path, start + 1, header, rows))
        else:
            i += 1
    return out


def without_parentheses(text: str) -> str:
    """The text with every (…) removed, nested ones included."""
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            return text
        text = shorter


def leading_names(cell: str, names: list[str]) -> list[str]:
    """The names an enumeration cell lists: of each comma/semicolon item outside parentheses (and before a
    dash that starts a comment), its first word, when that word is one of `names`."""
    text = without_parentheses(cell).split(" — ")[0].replace("`", "")
    items = [item.strip().split(" ")[0] for item in re.split(r"[,;]| and ", text)]
    return [item for item in items if item in names]


NUMBER_WORDS = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


def number(text: str) -> int:
    """A count as the docs write it: digits or an English word."""
    text = text.lower().replace(",", "")
    return int(text) if text.isdigit() else NUMBER_WORDS[text]


NUMBER_PATTERN = r"(\d{1,3}(?:,\d{3})+|\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"

# units a hand-written default may carry, in the base unit of the variable's suffix
TIME = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "day": 86400, "days": 86400}
SIZE = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
SUFFIX_BASE = {"_MS": ("time", 0.001), "_S": ("time", 1), "_DAYS": ("time", 86400), "_BYTES": ("size", 1),
               "_MB": ("size", 1024**2)}
UNSET = object()


@dataclass(frozen=True)
class Abridged:
    """A JSON object written with `…` for some values: its keys must be the default's, in order."""

    keys: tuple[str, ...]
    values: tuple[tuple[str, Any], ...]  # the values it does state


def abridged(text: str) -> Abridged | None:
    if not (text.startswith("{") and "…" in text):
        return None
    pairs = re.findall(r'"([^"]+)":\s*("(?:[^"]*)"|…)', text)
    return Abridged(tuple(k for k, _ in pairs), tuple((k, json.loads(v)) for k, v in pairs if v != "…"))


def literal(text: str, variable: str) -> Any:
    """The value a hand-written default states, or UNSET when it is prose ("per service", "local model")."""
    text = text.strip()
    text = re.sub(r"^\(?default\)?:?\s+", "", text)
    if re.fullmatch(r"\(?empty\)?( \(.*\))?", text) or text in ("", '`""`'):
        return ""
    text = re.sub(r"(?<=\S)\s+\(.*\)$", "", text.strip())  # a remark after the value: "`1` (`make up`: 2)"
    if re.fullmatch(r"`[^`]*`", text):
        text = text[1:-1]
    elif "`" in text:
        return UNSET
    if text in ("true", "false", "on", "off"):
        return text in ("true", "on")
    if text in ("none", "null", "unset"):
        return None
    grouped = re.fullmatch(r"([-+]?\d{1,3}(?:[ ,]\d{3})+|[-+]?\d+(?:\.\d+)?)(?:\s*(\w+))?", text)
    if grouped:
        value = float(grouped.group(1).replace(",", "").replace(" ", ""))
        unit = grouped.group(2)
        if unit is None:
            return value
        for suffix, (kind, base) in SUFFIX_BASE.items():
            table = TIME if kind == "time" else SIZE
            if variable.endswith(suffix) and unit in table:
                return value * table[unit] / base
        return UNSET if " " in text else text  # "5 MiB" of a variable without a size suffix; "1h" is text
    if abridged(text):
        return abridged(text)
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return UNSET
    if " " in text:
        return UNSET
    return text


def same(stated: Any, default: Any) -> bool:
    """A stated value against the code's default (numbers as numbers, containers as JSON)."""
    if isinstance(default, bool) or isinstance(stated, bool):
        return stated is default or (isinstance(stated, str) and stated == str(default).lower())
    if isinstance(default, int | float) and not isinstance(stated, str | list | dict):
        return stated is not None and abs(float(stated) - float(default)) < 1e-9
    if isinstance(default, int | float) and isinstance(stated, str):
        return False
    if isinstance(stated, Abridged):
        return isinstance(default, dict) and tuple(default) == stated.keys and all(
            default[k] == v for k, v in stated.values)
    if isinstance(default, list | tuple | dict):
        return bool(stated == (list(default) if isinstance(default, tuple) else default))
    return bool(stated == default)
