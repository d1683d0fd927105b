"""records.iso formats times itself (fewer instructions than isoformat): its text must stay the one every signed entry
content was made with, isoformat's in UTC with "Z", for every time, or stored entries would no longer verify."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from moe_core.audit.records import iso

pytestmark = pytest.mark.unit

ZONES = [UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)),
         timezone(-timedelta(hours=8)), timezone(timedelta(hours=14)), ZoneInfo("Europe/Berlin"),
         ZoneInfo("America/New_York"), None]


def _isoformat(value: datetime) -> str:
    """The text entries were signed with before iso formatted it itself."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _times(n: int) -> list[datetime]:
    rng = random.Random(52)
    out = []
    for i in range(n):
        start = datetime(rng.choice([2, 999, 1000, 1970, 2026, 9998]), 1, 1)
        at = start + timedelta(days=rng.randrange(365), seconds=rng.randrange(86_400),
                               microseconds=rng.choice([0, 1, 999_999, 100_000, rng.randrange(1_000_000)]))
        out.append(at.replace(tzinfo=ZONES[i % len(ZONES)], fold=rng.randrange(2)))
    return out


def test_iso_is_isoformats_text_in_utc_for_every_time() -> None:
    times = _times(50_000) + [datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"), fold=f) for f in (0, 1)]
    texts = [iso(t) for t in times]
    assert texts == [_isoformat(t) for t in times]
    assert sum(t.endswith(".000000Z") for t in texts if t) == 0  # isoformat drops zero microseconds
    assert {len(t) for t in texts if t} == {20, 27}  # with and without microseconds: both are among the times
    assert iso(None) is None
