"""The judge's copied source headers never reach the client (merger.source_labels), however the stream is cut."""

from __future__ import annotations

import pytest

from merger.source_labels import LabelStripper

pytestmark = pytest.mark.unit

CASES = [
    ("#3 expert/creative_writer, medium:\nRoses are red.", "Roses are red."),  # seen under `make up`
    ("#1 tool/math, high: 391", "391"),
    ("Intro.\n#2 graph/general, low:\nA fact.\n", "Intro.\nA fact.\n"),
    ("# A heading\nText", "# A heading\nText"),  # markdown is not a header
    ("#12 is a number", "#12 is a number"),
    ("Item #3 expert/x, high: stays mid-line", "Item #3 expert/x, high: stays mid-line"),
    ("#2 expert/general, sure: not a confidence", "#2 expert/general, sure: not a confidence"),
    ("ends with #2 exp", "ends with #2 exp"),
    ("#2 expert/gen", "#2 expert/gen"),  # held to the end: shown by flush
]


@pytest.mark.parametrize(("text", "shown"), CASES)
@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_headers_are_dropped_and_everything_else_shown(text: str, shown: str, size: int) -> None:
    labels = LabelStripper()
    out = "".join(labels.feed(text[i:i + size]) for i in range(0, len(text), size)) + labels.flush()
    assert out == shown
