"""The session-end clean-up deletes only this session's topics: never another session's on the same broker,
the fleet's own or Kafka's internal topics."""

from __future__ import annotations

import pytest

from tests.support.namespaces import SESSION, new_namespace
from tests.support.topic_cleanup import to_delete

pytestmark = pytest.mark.unit


def test_only_the_topics_of_this_sessions_namespaces_are_deleted() -> None:
    mine, also_mine = new_namespace("t"), new_namespace("e2e")
    assert SESSION in mine and mine != also_mine
    other_session = "t-abcdef-12345678" if SESSION != "abcdef" else "t-fedcba-12345678"
    topics = {f"{mine}.requests.v1", f"{also_mine}.audit.v1", f"{other_session}.requests.v1", "moe.requests.v1",
              "__consumer_offsets", f"moe.x-{SESSION}-y.v1"}
    assert to_delete(topics) == sorted([f"{mine}.requests.v1", f"{also_mine}.audit.v1"])
