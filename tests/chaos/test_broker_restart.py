"""The broker restarts while four requests are in flight: all four are answered, each once."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.support.chaos import Background, wait_until
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet

pytestmark = pytest.mark.chaos
IN_FLIGHT = 4


def test_a_broker_restart_with_requests_in_flight_loses_none(
        chaos_fleet: Fleet, chaos_url: str, chaos_key: str, private_infra: PrivateInfra,
        scripted: Scripted) -> None:
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
    for m, background in zip(markers, asking, strict=True):
        outcome = background.result()
        assert outcome.status == 200, (outcome.status, outcome.body, outcome.failure)
        assert outcome.content == f"Kept {m}."
