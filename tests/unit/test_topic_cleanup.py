"""The session-end clean-up deletes only what the session created, never the fleet's or Kafka's own topics."""

from __future__ import annotations

import pytest

from tests.support.topic_cleanup import to_delete

pytestmark = pytest.mark.unit


def test_only_topics_created_during_the_session_and_outside_the_fleet_namespace_are_deleted() -> None:
    before = {"tabc.requests.v1", "moe.requests.v1"}
    now = before | {"tdef.requests.v1", "g123.audit.v1", "moe.answers.v1", "__consumer_offsets", "_schemas"}
    assert to_delete(now, before) == ["g123.audit.v1", "tdef.requests.v1"]


def test_without_a_snapshot_every_test_namespace_goes_and_the_fleet_stays() -> None:
    assert to_delete({"moe.plans.v1", "t1.plans.v1", "__consumer_offsets"}, None) == ["t1.plans.v1"]
