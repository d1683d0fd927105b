"""Issue 52: the composition grammar tries its phrases on a text only when one pattern, the union of them, reads
the whole text (compose.Language.candidates). The union must never rule out a phrase that reads the text: every
text of the precision sets and their bodies that a phrase reads, the union reads too; and the phrases the union
leaves out (bare: nothing but one slot, they read any text) are always tried."""

from __future__ import annotations

import pytest

from planner.preflight import compose, normalise
from planner.preflight.lexicon import numbers_from_words
from tests.data.precision import evaluate

pytestmark = pytest.mark.unit
SETS = ("compose_heldout", "german_words", "tuning", "heldout")


def texts() -> list[str]:
    out: list[str] = []
    for name in SETS:
        for item in evaluate.load(name):
            text = normalise(item["q"]).text
            out += [text, numbers_from_words(text) or text]
    return out


def test_the_union_reads_every_text_a_phrase_with_words_reads() -> None:
    read = 0
    for lang in compose.languages().values():
        for text in texts():
            for body in compose._bodies(text, lang):
                for phrase in lang.phrases + lang.terms:
                    if not phrase.bare and phrase.pattern.fullmatch(body):
                        read += 1
                        assert lang.any_phrase.fullmatch(body), (lang.name, body, phrase.pattern.pattern)
                        assert phrase in lang.candidates(body)
                        if phrase in lang.terms:
                            assert lang.any_term.fullmatch(body) and phrase in lang.candidates(body, terms_only=True)
    assert read > 100  # the sets exercise the phrases


def test_bare_phrases_are_always_candidates_and_the_others_only_when_the_union_reads() -> None:
    for lang in compose.languages().values():
        bare = [p for p in lang.phrases + lang.terms if p.bare]
        assert bare and all(p.slots and len(p.slots) == 1 for p in bare)
        assert lang.candidates("no formula reads this sentence at all") == bare
        assert lang.candidates("no formula reads this", terms_only=True) == [p for p in lang.terms if p.bare]
