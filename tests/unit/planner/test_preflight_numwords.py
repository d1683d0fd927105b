"""Issue 53: number words as digits (planner/preflight/numwords.py, languages.yaml `number_words` and
`fractions`): German integers and ordinals by the text2num library, halves, joined "mal", fractions in words;
articles stay words; what the words do not say exactly goes to the planner. Answers go through the tools."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts.tools import select_tools
from planner.preflight import compose, match, numwords, recognise
from planner.preflight.quantities import READERS
from planner.tool_catalogue import ToolCatalogue

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())
EN = compose.languages()["en"].data
DE = compose.languages()["de"].data


def answer(question: str) -> str:
    task = recognise(question, ALL)
    assert task is not None and task.tool is not None, question
    return IMPLEMENTATIONS[task.tool](task.args).text


@pytest.mark.parametrize(("text", "digits"), [
    ("siebzehn mal dreiundzwanzig", "17 mal 23"),
    ("zweitausendvierhundert geteilt durch zwölf", "2400 geteilt durch 12"),
    ("am dritten März 2026", "am 3. März 2026"),
    ("dreieinhalb mal vier", "3,5 mal 4"),
    ("anderthalb Stunden", "1,5 Stunden"),
    ("dreimal sieben", "3 mal 7"),
    ("eine Million zweihunderttausend", "1200000"),
    ("ein Drittel von 90", None),  # the article stays a word: the fraction reader reads "ein Drittel"
    ("Ein Mantel kostet 160 Euro", None),
    ("noch einmal", None),  # "einmal" is no "1 mal"
    ("What is seven times three", None),  # English number words are the English lexicon's
])
def test_german_number_words_are_digits_articles_stay_words(text: str, digits: str | None) -> None:
    assert numwords.as_digits(text, "de") == digits


def test_fractions_in_words_are_read_from_the_language_data() -> None:
    """The reader sees the question with its number words as digits already ("zwei Drittel" -> "2 Drittel")."""
    assert READERS["frac"]("2 Drittel", DE) == "2/3" and READERS["frac"]("ein Viertel", DE) == "1/4"
    assert READERS["frac"]("die Hälfte", DE) == "1/2" and READERS["frac"]("a third", EN) == "1/3"
    assert READERS["frac"]("3 quarters", EN) == "3/4"
    assert READERS["frac"]("die Drittel", DE) is None and READERS["frac"]("zwei Äpfel", DE) is None
    assert READERS["frac"]("0 Drittel", DE) is None


@pytest.mark.parametrize(("question", "expected"), [
    ("Was ist siebzehn mal dreiundzwanzig?", "= 391"),
    ("Wie viel sind zweitausendvierhundert geteilt durch zwölf?", "= 200"),
    ("Was ist zwei Drittel von 150?", "= 100"),
    ("Was ist die Hälfte von der Hälfte von 100?", "= 25"),
    ("Wie viel ist eine Million geteilt durch vier?", "= 250,000"),
    ("two thirds of 150", "= 100"),
    ("Was ist das Doppelte von zweihundertfünfzig?", "= 500"),
    ("Welcher Wochentag ist der dritte März 2026?", "Tuesday"),
    ("Welches Datum ist zehn Tage nach dem dritten März 2026?", "2026-03-13"),
    ("Wie viele Minuten sind anderthalb Stunden?", "= 90"),
    ("Was ist die zehnte Fibonacci-Zahl?", "= 55"),
])
def test_questions_in_number_words_get_the_exact_answer(question: str, expected: str) -> None:
    assert expected in answer(question)


@pytest.mark.parametrize("question", [
    "Was ist zwei drei mal vier?",  # two numbers side by side: "2 3 * 4" is no expression
    "What is 2 3 times 4?",
    "Wie alt bin ich, wenn ich neunzehnhundertneunzig geboren bin?",  # "bin" is a verb, not binary
    "Ich bin 1990 geboren",
    "Wer war der dritte Bundeskanzler?",
    "Am dritten März habe ich Geburtstag, wie soll ich feiern?",
    "Die Hälfte meiner Kollegen ist krank, was soll ich tun?",
    "Hat Berlin etwa dreieinhalb Millionen Einwohner?",
    "Wie viel Joule sind zehn Newtonmeter?",  # another kind, in words too
    "Rechne zwei Gray in Sievert um",
    "Was ist dreimal so viel wie 5?",
    "What is half of the students?",
])
def test_number_words_that_do_not_say_one_computation_go_to_the_planner(question: str) -> None:
    assert match(question) is None


def test_a_language_s_number_words_are_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """French number words by adding a block to languages.yaml: no code."""
    data: dict[str, Any] = yaml.safe_load((numwords.HERE / "languages.yaml").read_text(encoding="utf-8"))
    data["fr"] = {"number_words": {"text2num": "fr", "articles": ["un", "une"], "scales": ["cent", "mille"]}}
    real = numwords.HERE

    class Folder:
        def __truediv__(self, name: str) -> Any:
            return _Text(yaml.safe_dump(data, allow_unicode=True)) if name == "languages.yaml" else real / name

    monkeypatch.setattr(numwords, "HERE", Folder())
    numwords.configured.cache_clear()
    numwords.as_digits.cache_clear()
    try:
        assert numwords.as_digits("dix-sept fois vingt-trois", "fr") == "17 fois 23"
        assert numwords.as_digits("un chat", "fr") is None
    finally:
        monkeypatch.setattr(numwords, "HERE", real)
        numwords.configured.cache_clear()
        numwords.as_digits.cache_clear()


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.text
