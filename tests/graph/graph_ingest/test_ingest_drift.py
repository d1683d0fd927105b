"""graph-ingest reports each ingest run's counts on the real Neo4j (what the extraction declared, the tenant's
entities and relations before and after), and codex-lineage's drift checks rate that very event: an answer
whose facts are about entities the graph already holds adds zero entities and raises zero_entities_added."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from codex_lineage.drift.runs import DriftSettings, _ingest_run
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event, learn

pytestmark = pytest.mark.infra


async def test_an_ingest_run_that_relates_known_entities_is_no_drift(
        graph_services: GraphServices, scripted: Scripted, tenant: str) -> None:
    """The second run writes three relations among the five entities the first one added: judged against the
    dataset's own baseline it had no entity to add, so its adding none is healthy (issue 54: on a healthy fleet this
    was flagged zero_entities_added)."""
    tag = uuid.uuid4().hex[:6]
    names = [f"Drift{c}{tag}" for c in "ABCDE"]
    first, second = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    scripted.script([
        extraction_rule(first, [(names[0], "DEPENDS_ON", names[1], 0.9), (names[2], "PRODUCES", names[3], 0.9),
                                (names[4], "PART_OF", names[0], 0.9)]),
        extraction_rule(second, [(names[0], "INTERACTS_WITH", names[2], 0.9),
                                 (names[1], "INTERACTS_WITH", names[3], 0.9),
                                 (names[4], "INTERACTS_WITH", names[1], 0.9)])])
    # a technical answer: its entities are filed under technical, so nothing waits for review (a medical one
    # would: tests/graph/graph_ingest/test_learned_policy.py)
    grew = await learn(graph_services, ingest_event(tenant, first, knowledge_type="technical",
                                                    source_expert="technical_support"))
    stats = grew["details"]["stats"]
    assert stats["declared_entities"] == 5 and stats["declared_relations"] == 3
    assert stats["after"]["entities"] - stats["before"]["entities"] == 5
    assert stats["after"]["relations"] - stats["before"]["relations"] == 3
    stalled = await learn(graph_services, ingest_event(tenant, second, knowledge_type="technical",
                                                      source_expert="technical_support"))
    zero = stalled["details"]["stats"]
    assert zero["before"] == stats["after"] and zero["after"]["entities"] == zero["before"]["entities"]
    assert zero["after"]["relations"] == zero["before"]["relations"] + 3
    cfg, now = DriftSettings(threshold=0.3, min_declared=5), datetime.now(UTC)
    assert _ingest_run(grew, now, tenant, cfg)["severity"] == "ok"
    run = _ingest_run(stalled, now, tenant, cfg)
    assert run["flags"] == [] and run["severity"] == "ok"
    assert run["dataset"] == f"graph/{tenant}" and run["id"] == f"ingest:{stalled['response_id']}"


async def test_a_run_whose_triples_wait_for_review_is_no_drift(
        graph_services: GraphServices, scripted: Scripted, tenant: str) -> None:
    """Medical triples wait for an admin's review (tests/graph/graph_ingest/test_learned_policy.py): nothing is
    written now, so the graph's not growing is no drift. The second trial saw such a run rated warn
    zero_entities_added."""
    m = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(m, [(f"Zelvoprin {m}", "TREATS", f"Blorp {m}", 0.9),
                                         (f"Quavotrin {m}", "TREATS", f"Snerb {m}", 0.9)])])
    held = await learn(graph_services, ingest_event(tenant, m, knowledge_type="medical", source_expert="medical"))
    stats = held["details"]["stats"]
    assert (stats["declared_entities"], stats["declared_relations"]) == (4, 2)
    assert (stats["written_entities"], stats["written_relations"]) == (0, 0)
    quarantined = await graph_services.tap.wait(  # what the drift loader counts as accounted for (drift.runs)
        graph_services.bus.topics.audit,
        lambda e: e["response_id"] == held["response_id"] and e["action"] == "quarantined", count=2)
    run = _ingest_run(held, datetime.now(UTC), tenant, DriftSettings(threshold=0.3, min_declared=5),
                      accounted=len(quarantined))
    assert (run["severity"], run["flags"]) == ("info", [])
    unaccounted = _ingest_run(held, datetime.now(UTC), tenant, DriftSettings(threshold=0.3, min_declared=5))
    assert (unaccounted["severity"], unaccounted["flags"]) == ("crit", ["nothing_written"])
    assert (run["declared_relations"], run["written_relations"], run["not_written_relations"]) == (2, 0, 2)
