"""The broker restarts while four requests are in flight: all four are answered, each once, and each one's record
is complete and verifies. The record holds each request once; an answer may be on the topic twice (a stage that
published it but could not commit its input while the broker was away gets it again and publishes again: at least
once), which the record keeps as it happened; the client got one (the gateway answers a request once)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import LineageFleet
from tests.support.chaos import Background, wait_until
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.record_check import assert_complete

pytestmark = pytest.mark.chaos
IN_FLIGHT = 4


def test_a_broker_restart_with_requests_in_flight_loses_none(
        chaos_fleet: Fleet, chaos_url: str, chaos_key: str, private_infra: PrivateInfra,
        scripted: Scripted, chaos_record: LineageFleet) -> None:
    markers = [f"B{uuid.uuid4().hex[:8]}" for _ in range(IN_FLIGHT)]
    rules = []
    for m in markers:  # the expert answers a few seconds later: while the broker is down or coming back
        rules += [{"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
                  {"model": "expert-model", "contains": m, "reply": f"Kept {m}.\nCONFIDENCE: high", "delay_ms": 3000},
                  {"model": "judge-model", "contains": m, "reply": f"Kept {m}."}]
    scripted.script(rules)
    asking = [Background(chaos_url, chaos_key, f"Keep this one {m}") for m in markers]
    wait_until(lambda: all(any(m in json.dumps(c["messages"]) for c in scripted.calls("expert-model"))
                           for m in markers), "every request to reach its expert", timeout_s=60)
    private_infra.stop("kafka")
    private_infra.up("kafka")
    outcomes = [background.result() for background in asking]
    for m, outcome in zip(markers, outcomes, strict=True):
        assert outcome.status == 200, (outcome.status, outcome.body, outcome.failure)
        assert outcome.content == f"Kept {m}."
    assert_complete(chaos_record, [o.response_id for o in outcomes], once=("ChatRequest",))
