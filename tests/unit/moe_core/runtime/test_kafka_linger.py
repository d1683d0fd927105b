"""Which consumers may linger (moe_core.stage.spec.Consumes.linger): only those no request waits for. Their fetches are
held by the broker for MOE_KAFKA_LINGER_MS or until it has LINGER_BYTES; every other consumer gets its record as
it arrives (a lingering consumer on the request's path would add up to the linger to every answer)."""

from __future__ import annotations

import pytest

import moe_core.stage.registry as stage_registry
from moe_core.runtime.kafka_clients import LINGER_BYTES, linger_options
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import subscriber_options
from moe_core.stage.spec import Consumes

pytestmark = pytest.mark.unit
OFF_PATH = {("control-plane", "usage"), ("graph-ingest", "ingest"),
            ("gap-healer", "ontology_gaps"), ("codex-lineage", "*"),  # codex-lineage: its batch subscriber
            ("planner", "answers")}  # the semantic cache's write-behind: the answer is given before it is stored


def test_only_consumers_no_request_waits_for_linger() -> None:
    lingering = {(d.name, c.handler if c.topic == "cache_entries" else c.topic)
                 for d in stage_registry.declarations() for c in d.all_consumed() if c.linger}
    assert lingering == OFF_PATH


def test_a_lingering_consumer_fetches_several_records_and_the_others_each_at_once() -> None:
    settings = FleetSettings(kafka_linger_ms=200, kafka_fetch_max_wait_ms=500)
    usage = subscriber_options(settings, Consumes("usage", None, "record_usage", linger=True))
    assert (usage["fetch_min_bytes"], usage["fetch_max_wait_ms"]) == (LINGER_BYTES, 200)
    plans = subscriber_options(settings, Consumes("plans", None, "on_plan"))
    assert "fetch_min_bytes" not in plans and plans["fetch_max_wait_ms"] == 500  # a record ends the long poll
    off = FleetSettings(kafka_linger_ms=0, kafka_fetch_max_wait_ms=500)
    assert linger_options(off) == {"fetch_max_wait_ms": 500}
    assert "fetch_min_bytes" not in subscriber_options(off, Consumes("usage", None, "record_usage", linger=True))
