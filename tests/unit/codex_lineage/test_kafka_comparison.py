"""`replay verify`'s reading of a stored record its topic no longer holds (codex_lineage.compare.not_in_kafka): an
insider who deletes a request's records from Kafka (delete-records, as the broker's admin) to hide a rewrite of
the store is named, where a record simply older than the topic's retention is only noted (found in a trial:
both were "no longer retained by Kafka")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from codex_lineage.compare import not_in_kafka, read_from

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def row(offset: int, age: timedelta) -> dict[str, object]:
    return {"offset": offset, "broker_ts": NOW - age}


def test_a_record_gone_before_its_topics_retention_was_deleted() -> None:
    problem, note = not_in_kafka(row(5, timedelta(minutes=20)), log_start=9, days=30, now=NOW)
    assert problem == ("deleted from Kafka before its retention (0.3 h old, the topic keeps 30 days): records were "
                       "removed from the topic (delete-records)") and note == ""
    kept_forever, _ = not_in_kafka(row(5, timedelta(days=400)), log_start=9, days=-1, now=NOW)
    assert kept_forever.startswith("deleted from Kafka before its retention (9600.0 h old, the topic keeps forever)")


def test_a_record_older_than_the_retention_is_a_note_and_one_inside_the_log_was_inserted() -> None:
    problem, note = not_in_kafka(row(5, timedelta(days=31)), log_start=9, days=30, now=NOW)
    assert problem == "" and note.startswith("no longer retained by Kafka (older than the topic's 30 days")
    inserted, _ = not_in_kafka(row(12, timedelta(minutes=1)), log_start=9, days=30, now=NOW)
    assert inserted.startswith("not in Kafka: the topic holds no such record of this request (inserted")


def test_the_topics_are_read_from_a_minute_before_the_requests_first_stored_record_when_its_request_is_stored() -> None:
    first, answer = NOW - timedelta(seconds=30), NOW
    rows = [{"message_type": "Answer", "broker_ts": answer}, {"message_type": "ChatRequest", "broker_ts": first}]
    assert read_from(rows) == first - timedelta(minutes=1)
    inserted_earlier = [*rows, {"message_type": "Plan", "broker_ts": NOW - timedelta(days=3)}]
    assert read_from(inserted_earlier) == NOW - timedelta(days=3, minutes=1)  # every stored record is compared


def test_without_its_stored_request_every_retained_record_is_read() -> None:
    assert read_from([{"message_type": "Answer", "broker_ts": NOW}]) is None  # not recorded yet, or deleted
    assert read_from([]) is None
