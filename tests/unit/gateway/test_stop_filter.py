"""Stop sequences on the answer (gateway.stop_sequences): the earliest one ends it; streamed text never shows
anything past a stop sequence, also when one arrives split across pieces, and loses nothing before it."""

from __future__ import annotations

import pytest

from gateway.stop_sequences import StopFilter, cut, first_stop
from moe_core.contracts import Answer, deadline_in

pytestmark = pytest.mark.unit


def _answer(content: str, finish: str = "length") -> Answer:
    return Answer(response_id="r", tenant_id="t", deadline_at=deadline_in(5), mode="m", content=content,
                  finish_reason=finish)  # type: ignore[arg-type]


def test_the_earliest_stop_sequence_ends_the_answer() -> None:
    answer, stop = cut(_answer("one two END three ### four"), ["###", "END"])
    assert (answer.content, answer.finish_reason, stop) == ("one two ", "stop", "END")
    assert first_stop("abcd", ["bc", "b"]) == (1, "bc")  # the longer one where both start
    untouched, none = cut(_answer("no stop here"), ["###"])
    assert (untouched.content, untouched.finish_reason, none) == ("no stop here", "length", None)
    plain = _answer("x")
    assert cut(plain, None) == (plain, None)


@pytest.mark.parametrize("pieces", [
    ["Tides come ", "from the moon.", "\n###", " Notes"],
    ["Tides come from the moon.\n#", "#", "# Notes"],
    ["Tides come from the moon.\n###"],
    list("Tides come from the moon.\n### Notes"),
])
def test_streamed_text_stops_at_a_sequence_split_across_pieces(pieces: list[str]) -> None:
    stops = StopFilter(["\n###"])
    sent = "".join(stops.feed(p) for p in pieces)
    assert sent == "Tides come from the moon." and stops.stopped == "\n###"
    assert stops.feed("more") == ""


def test_text_that_only_looked_like_a_stop_sequence_is_sent() -> None:
    stops = StopFilter(["STOP"])
    sent = [stops.feed(p) for p in ["a ST", "OW b", " STO"]]
    assert sent == ["a ", "STOW b", " "] and stops.stopped is None
    assert StopFilter(None).feed("anything") == "anything"
