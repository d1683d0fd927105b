"""The same record always gives the same events (a rebuild compares them with the stored ones): the events of a
corpus that reaches every branch of the derivation are those the release before the dict builder derived
(fixtures/lineage-events.json), and openlineage-python's transports are given the same JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openlineage.client.serde import Serde

from codex_lineage.lineage import Datasets, Lineage
from tests.unit.codex_lineage.lineage_corpus import TOPICS, corpus

pytestmark = pytest.mark.unit
LINEAGE = Lineage(TOPICS, "moe-sovereign", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))
STORED = json.loads((Path(__file__).parent / "fixtures" / "lineage-events.json").read_text())


def test_every_record_gives_the_events_it_always_gave() -> None:
    records = corpus()
    assert [r.identity() for r in records] == [s["record"] for s in STORED]
    for record, stored in zip(records, STORED, strict=True):
        derived = LINEAGE.events(record)
        # as stored: the canonical JSON of each event's body (moe_core.audit.entries.event_values)
        assert [json.dumps(e, sort_keys=True) for e in derived] == \
            [json.dumps(e, sort_keys=True) for e in stored["events"]], record.identity()


def test_a_transport_is_given_each_event_as_it_is_stored() -> None:
    events = [e for record in corpus() for e in LINEAGE.events(record)]
    assert len(events) > 50
    assert [Serde.to_dict(LINEAGE.run_event(e)) for e in events] == events
