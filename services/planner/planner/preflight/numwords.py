"""Number words as digits in the languages that say how (languages.yaml `number_words`; issue 53): integers and
ordinals by the text2num library ("siebzehn mal dreiundzwanzig" -> "17 mal 23", "zweitausendvierhundert" ->
"2400", "am dritten März" -> "am 3. März"), halves and joined operators by the language's word lists
("dreieinhalb" -> "3,5", "dreimal" -> "drei mal"). Articles stay words ("ein Apfel" is no 1), unless a scale word
follows ("eine Million"). The readers try a question again with its number words as digits (core.match) when it
was not answered as written; what the words say is then what the digits say, nothing is guessed: a run the
library does not read as one number stays words, and the readers hand it over."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from text_to_num import alpha2digit, text2num

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
HERE = Path(__file__).parent
KEEP = "QARTICLE{}Q"  # an article's placeholder while the library reads the rest (it would read "ein" as 1)


@lru_cache(maxsize=1)
def configured() -> dict[str, dict[str, Any]]:
    """language -> its `number_words` block, for the languages that have one."""
    langs = yaml.safe_load((HERE / "languages.yaml").read_text(encoding="utf-8"))
    return {name: data["number_words"] for name, data in langs.items() if data.get("number_words")}


def _value(word: str, code: str) -> int | None:
    try:
        return int(text2num(word, code))
    except ValueError:
        return None


def _halves(text: str, cfg: dict[str, Any], decimal: str) -> str:
    """"dreieinhalb" -> "3,5" (the language's decimal mark), the language's whole words ("anderthalb") as given."""
    for word, value in cfg.get("halves_words", {}).items():
        text = re.sub(rf"\b{re.escape(word)}\b", value, text, flags=I)
    suffix = cfg.get("halves")
    if not suffix:
        return text

    def half(m: re.Match[str]) -> str:
        whole = _value(m[1], cfg["text2num"])
        return m[0] if whole is None else f"{whole}{decimal}5"

    return re.sub(rf"\b(\w+?){re.escape(suffix)}\b", half, text, flags=I)


def _joined_times(text: str, cfg: dict[str, Any]) -> str:
    """"dreimal sieben" -> "drei mal sieben": a number word of 2 or more joined to the language's times word."""
    times = cfg.get("times")
    if not times:
        return text

    def split(m: re.Match[str]) -> str:
        value = _value(m[1], cfg["text2num"])
        return f"{m[1]} {m[2]}" if value is not None and value >= 2 else m[0]

    return re.sub(rf"\b(\w+?)({re.escape(times)})\b", split, text, flags=I)


@lru_cache(maxsize=4096)
def as_digits(text: str, lang: str, decimal: str = ",") -> str | None:
    """The text with the language's number words as digits, or None when the language has no number words or
    the text has none."""
    cfg = configured().get(lang)
    if cfg is None:
        return None
    scales = "|".join(cfg.get("scales", []))
    articles = "|".join(sorted(cfg.get("articles", []), key=len, reverse=True))
    out = re.sub(rf"\b(?:{articles})\s+(?=(?:million\w*|milliard\w*)\b)", "", text, flags=I) if articles else text
    out = _joined_times(_halves(out, cfg, decimal), cfg)
    kept: list[str] = []

    def keep(m: re.Match[str]) -> str:
        kept.append(m[0])
        return KEEP.format(len(kept) - 1)

    if articles:
        out = re.sub(rf"\b(?:{articles})\b(?!\s+(?:{scales})\b)", keep, out, flags=I)
    out = alpha2digit(out, cfg["text2num"], threshold=0)
    out = re.sub(r"QARTICLE(\d+)Q", lambda m: kept[int(m[1])], out)
    return None if out == text else out
