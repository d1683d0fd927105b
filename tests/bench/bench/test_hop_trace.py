"""The hop trace's attribution without a fleet: a request's timeline cut into consecutive segments that add up to
its latency, and their medians over the samples (bench.hop_trace, issue 52 item 3)."""

from __future__ import annotations

import pytest

from bench import hop_trace

pytestmark = pytest.mark.unit

AT = {"sent": 0.0, "requests created": 2.0, "requests appended": 3.0, "plans started": 4.0, "plans created": 9.0,
      "tasks.expert appended": 10.0, "results started": 11.5, "results created": 14.0, "results appended": 15.0,
      "answers started": 16.0, "answers created": 18.0, "answers appended": 19.0, "received": 25.0}


def test_the_segments_are_consecutive_and_add_up_to_the_latency() -> None:
    found = hop_trace.segments(sorted(AT.items(), key=lambda e: e[1]))
    assert list(found) == [name for name, _, _ in hop_trace.SEGMENTS]
    assert found[hop_trace.SEGMENTS[0][0]] == 2.0 and found[hop_trace.SEGMENTS[-1][0]] == 6.0
    assert sum(found.values()) == pytest.approx(AT["received"])


def test_a_missing_event_drops_only_its_segments_and_medians_take_what_there_is() -> None:
    partial = [(event, at) for event, at in AT.items() if event != "results started"]
    short = hop_trace.segments(partial)
    assert "expert delivery" not in short and "expert handler" not in short and len(short) == 7
    later = {event: at * 3 for event, at in AT.items()}
    requests = [{"segments": short}, {"segments": hop_trace.segments(list(AT.items()))},
                {"segments": hop_trace.segments(list(later.items()))}]
    medians = hop_trace.medians(requests)
    assert medians["edge out (answer fetched, settled, delivered, HTTP reply)"] == 6.0  # of 6, 6 and 18
    assert medians["expert delivery"] == pytest.approx(3.0)  # of 1.5 and 4.5: the two that have it
