"""The judge's insight block (merger.insight): taken out of the answer wherever the stream splits it, never
shown, parsed into the IngestEvent's SynthesisInsight; text that only looks like the tag's start is shown."""

from __future__ import annotations

import pytest

from merger.insight import CLOSE, OPEN, InsightStripper

pytestmark = pytest.mark.unit
ANSWER = "Both drugs lower the fever; together they last longer."
BLOCK = f'{OPEN}{{"summary": "Combined they last longer.", "entities": ["Aspirin", " Aspirin", "Paracetamol"], ' \
        f'"insight_type": "Comparison"}}{CLOSE}'


def _run(pieces: list[str]) -> tuple[str, InsightStripper]:
    stripper = InsightStripper()
    shown = "".join(stripper.feed(p) for p in pieces) + stripper.flush()
    return shown, stripper


@pytest.mark.parametrize("cut", range(0, len(ANSWER + " " + BLOCK) + 1, 3))
def test_the_block_is_stripped_wherever_the_stream_splits_it(cut: int) -> None:
    text = ANSWER + " " + BLOCK
    shown, stripper = _run([text[:cut], text[cut:]])
    assert shown == ANSWER + " "
    found = stripper.insight()
    assert found is not None and found.summary == "Combined they last longer."
    assert (found.entities, found.insight_type) == (["Aspirin", "Paracetamol"], "comparison")


def test_one_character_at_a_time_and_a_lower_case_tag() -> None:
    text = ANSWER + BLOCK.replace(OPEN, OPEN.lower())
    shown, stripper = _run(list(text))
    assert shown == ANSWER and stripper.insight() is not None


def test_text_that_only_starts_like_the_tag_is_shown() -> None:
    for text in ("x <SYNTH is a word here", "a < b and <SYNTHESIS_INSIGH", "ends with <"):
        shown, stripper = _run([text[:5], text[5:]])
        assert shown == text and stripper.insight() is None and stripper.block is None


@pytest.mark.parametrize("block", [f"{OPEN}not json{CLOSE}", f"{OPEN}[1, 2]{CLOSE}", f'{OPEN}{{"summary": ""}}{CLOSE}',
                                   f'{OPEN}{{"entities": ["x"]}}', f"{OPEN}"])
def test_a_block_that_is_not_an_insight_is_still_hidden_and_yields_none(block: str) -> None:
    shown, stripper = _run([ANSWER, block])
    assert shown == ANSWER and stripper.insight() is None


def test_a_fenced_block_and_a_block_without_its_closing_tag_still_parse() -> None:
    shown, stripper = _run([ANSWER, OPEN + '```json\n{"summary": "S."}\n```' + CLOSE])
    assert shown == ANSWER and stripper.insight() is not None
    _, unclosed = _run([ANSWER, OPEN + '{"summary": "Cut off at the end."}'])
    found = unclosed.insight()
    assert found is not None and (found.summary, found.insight_type, found.entities) == ("Cut off at the end.",
                                                                                           "synthesis", [])
