"""Two replicas of a stage; the one working on a request is killed and stays dead: the other takes over its
partitions (the consumer group rebalances) and answers the request."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import LineageFleet
from tests.support.chaos import Background, holder, wait_until
from tests.support.fleet import Fleet, ServiceProcess, free_port
from tests.support.record_check import assert_complete

pytestmark = pytest.mark.chaos


def test_the_surviving_replica_takes_over_and_answers(
        chaos_fleet: Fleet, chaos_url: str, chaos_key: str, scripted: Scripted,
        chaos_record: LineageFleet) -> None:
    first = chaos_fleet["expert-worker"]
    second = ServiceProcess("expert-worker", free_port(), {**first.env})
    second.env["MOE_HTTP_PORT"] = str(second.port)
    second.start()
    try:
        second.wait_ready()
        m = f"R{uuid.uuid4().hex[:8]}"
        reply = f"The other replica answered ({m})."
        scripted.script([
            {"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
            {"model": "expert-model", "contains": m, "reply": "never", "delay_ms": 300_000, "times": 1},
            {"model": "expert-model", "contains": m, "reply": f"{reply}\nCONFIDENCE: high"},
            {"model": "judge-model", "contains": m, "reply": reply},
        ])
        asking = Background(chaos_url, chaos_key, f"Which replica {m}")
        wait_until(lambda: any(m in json.dumps(c["messages"]) for c in scripted.calls("expert-model")),
                   "the expert call to be held")
        replicas = {s.proc.pid: s for s in (first, second) if s.proc is not None}
        working = replicas[holder(list(replicas), int(urlsplit(scripted.url).port or 0))]
        working.kill()  # and it stays dead until the request is answered
        outcome = asking.result()
        assert outcome.status == 200, (outcome.status, outcome.body, outcome.failure)
        assert outcome.content == reply
        calls = [c for c in scripted.calls("expert-model") if m in json.dumps(c["messages"])
                 and "You extract" not in json.dumps(c["messages"])]  # graph-ingest's extraction is no task
        assert len(calls) == 2  # the held call, then the survivor's
        assert_complete(chaos_record, [outcome.response_id])  # the killed replica published nothing: once each
    finally:
        if first.proc is None or first.proc.poll() is not None:
            if second.proc is not None and second.proc.poll() is None:
                chaos_fleet.services["expert-worker"] = second  # the survivor stays the fleet's replica (no restart)
            else:  # a start of the fleet's replica only when no replica is left (each start costs the tier ~20 s)
                first.start()
                first.wait_ready()
        else:
            second.stop()
