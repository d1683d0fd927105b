"""The streams cell's frame check (bench/streams.py): what counts as dropped, reordered, held and failed."""

from __future__ import annotations

import pytest

from bench.streams import WORDS, Stream, summary

pytestmark = pytest.mark.unit


def _stream(words: list[int], **kw: object) -> Stream:
    fields: dict[str, object] = {"status": 200, "finished": True, "done": True, "frames": len(words) + 3}
    fields.update(kw)
    return Stream(words=words, **fields)  # type: ignore[arg-type]


def test_a_complete_stream_in_order_holds() -> None:
    ok = _stream(list(range(WORDS)))
    assert (ok.dropped(), ok.reordered(), ok.held()) == (0, 0, True)


def test_missing_words_finish_or_done_are_dropped_frames_and_swaps_are_reordered() -> None:
    gap = _stream([w for w in range(WORDS) if w != 7])
    assert (gap.dropped(), gap.held()) == (1, False)
    cut = _stream(list(range(10)), finished=False, done=False)
    assert cut.dropped() == WORDS - 10 + 2
    swapped = _stream([0, 2, 1, *range(3, WORDS)])
    assert (swapped.dropped(), swapped.reordered(), swapped.held()) == (0, 1, False)
    twice = _stream([*range(WORDS), WORDS - 1])
    assert (twice.dropped(), twice.reordered()) == (0, 1)


def test_a_stream_that_ended_with_an_error_is_failed_not_dropped() -> None:
    late = _stream([], finished=False, error="stream error: the request did not complete before its deadline")
    refused = Stream(status=429, error="HTTP 429")
    row = summary("trivial", 3, [_stream(list(range(WORDS))), late, refused], 1.0, {"gateway": 2.0})
    assert (row["held"], row["failed"], row["dropped_frames"], row["reordered_frames"]) == (1, 2, 0, 0)
    assert row["errors"] == {"stream error: the request did not complete before its deadline": 1, "HTTP 429": 1}
