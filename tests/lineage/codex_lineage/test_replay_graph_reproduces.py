"""`replay rerun --as-recorded` on a fleet whose knowledge graph learned from the answer (real broker, Postgres,
Neo4j, timestamp authority; scripted models): a request planned with an expert task and the graph task is recorded,
graph-ingest learns a fact from its answer (so today's graph read differs), the models change, and the re-execution
still reproduces the answer byte for byte, the graph task answered from the record and no model asked; a graph task
whose instruction differs from the recorded one is named as the first differing stage. `rerun --today` shows the
graph read that differs now. The tier's graph fleet (graph-rag, graph-ingest; shared with the fact lineage cases) and
its own tenant."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from typing import Any

import pytest

from codex_lineage.reproduce import reproduce
from codex_lineage.settings import LineageSettings
from moe_core.audit.store import AuditStore
from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.lineage.conftest import LineageFleet, reexecution, tenant_user

pytestmark = pytest.mark.e2e
# a phrase of graph-ingest's system prompt (tests/graph/graph_ingest/test_learning_journey.py)
EXTRACT = "extract at most"


@pytest.fixture(scope="module")
def graph_fleet(graph_lineage_fleet: LineageFleet) -> LineageFleet:
    """The tier's graph fleet: the audited fleet plus graph-rag and graph-ingest on the real Neo4j; every plan gets
    the graph task."""
    return graph_lineage_fleet


def _wait_learned(fleet: LineageFleet, rid: str) -> dict[str, Any]:
    """graph-ingest's audit event that it learned from the answer (on the record)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = [r for r in fleet.records(rid) if r["type"] == "AuditEvent" and r.get("action") == "ingested"]
        if done:
            return done[0]
        time.sleep(0.5)
    raise AssertionError(f"graph-ingest did not learn from {rid}")


@pytest.fixture(scope="module")
def recorded(graph_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> dict[str, Any]:
    """One request: an expert task and the graph task (which finds nothing yet), merged by the judge; graph-ingest
    then learns a fact about the asked-about term from the answer."""
    tenant, key = tenant_user(infra, "replay-graph-user")
    m = f"Q{uuid.uuid4().hex[:8]}"
    term = f"Velor{m[1:7]}"  # a term of the question the graph learns about
    scripted_server.script([
        {"model": "expert-model", "system_contains": EXTRACT, "contains": m,
         "reply": json.dumps({"triples": [{"subject": term, "relation": "PART_OF", "object": "Astronomy",
                                           "confidence": 0.95}]})},
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain the {term} orbit {m}"))},
        {"model": "expert-model", "contains": f"Explain the {term} orbit {m}",
         "reply": f"{term} circles its star every 3 days.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": f"{term} is a planet:\n  it circles its star every 3 days."},
    ])
    rid, answer = graph_fleet.ask(key, f"How does {term} move in its orbit? {m}")
    learned = _wait_learned(graph_fleet, rid)
    graph_fleet.wait_settled(tenant)  # every record stored and covered by a checkpoint
    return {"rid": rid, "m": m, "term": term, "answer": answer, "learned": learned}


def test_the_original_plan_had_the_graph_task_and_the_graph_learned_since(recorded: dict[str, Any],
                                                                          graph_fleet: LineageFleet) -> None:
    records = graph_fleet.records(recorded["rid"])
    plan = next(r for r in records if r["type"] == "Plan")
    assert [(t["kind"], t["category"]) for t in plan["tasks"]] == [("expert", "general"), ("graph", "knowledge_graph")]
    graph = next(r for r in records if r["type"] == "TaskResult" and r["kind"] == "graph")
    assert recorded["term"] not in graph["content"]  # it knew nothing of the term then
    assert recorded["learned"]["reason"] == "1 of 1 triples written", recorded["learned"]


def test_as_recorded_reproduces_after_the_graph_learned_and_the_models_changed(
        graph_fleet: LineageFleet, scripted_server: Scripted, recorded: dict[str, Any], changed_models: str) -> None:
    today = graph_fleet.rerun("--today", recorded["rid"])
    assert today.returncode == 0, today.stdout + today.stderr
    # today's graph read knows the learned fact: the graph task's output differs now
    assert "task:    graph:knowledge_graph: same model, output differs" in today.stdout, today.stdout
    before = len(calls_for(scripted_server.calls(), changed_models))

    done = graph_fleet.rerun("--as-recorded", recorded["rid"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    head, replay_id = reexecution(lines)
    assert " and 1 of 1 recorded tool results answered from the record" in head, head
    compared = lines[lines.index(head) + 1:]
    assert compared[:3] == ["  plan     same: 2 tasks", "  task t1  same: expert:general",
                            "  task t2  same: graph:knowledge_graph, answered from the record"], compared
    assert compared[3].startswith(f"  answer   same: {len(recorded['answer'])} chars, sha256:"), compared
    assert lines[-1] == "REPRODUCED: the answer is byte for byte the recorded one"
    assert len(calls_for(scripted_server.calls(), changed_models)) == before  # no model was asked
    replayed = graph_fleet.records(replay_id, until="Answer")
    answer = next(p for p in replayed if p["type"] == "Answer")
    assert answer["content"] == recorded["answer"] and answer["replay_of"] == recorded["rid"]
    graph = next(p for p in replayed if p["type"] == "TaskResult" and p["kind"] == "graph")
    assert graph["from_record"] and recorded["term"] not in graph["content"]  # the graph as it was, not today's
    assert not any(p["type"] in ("IngestEvent", "OntologyGap") for p in replayed)  # nothing learned, no gap reported


def test_a_graph_task_whose_instruction_differs_is_named(graph_fleet: LineageFleet, recorded: dict[str, Any],
                                                         changed_models: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded graph task asked another question than today's planner sends (its instruction digest differs):
    the graph task is not answered from the record, and the command names it."""

    async def run() -> dict[str, Any]:
        settings = LineageSettings()  # as the operator's command reads it (the fleet's environment)
        store = await AuditStore.connect(graph_fleet.owner_dsn, graph_fleet.schema, migrate=False)
        try:
            records = await store.records(recorded["rid"])
        finally:
            await store.close()
        changed = []
        for r in records:
            if r.message_type == "GraphTask":
                r = dataclasses.replace(r, payload={**r.payload, "question": "Something else entirely?"})
            changed.append(r)
        return await reproduce(settings, changed, 90)

    for name, value in graph_fleet.env.items():
        monkeypatch.setenv(name, value)
    outcome = asyncio.run(run())
    assert not outcome["reproduced"], outcome["lines"]
    assert outcome["tool_results_from_record"] == 0
    assert ("  task t2  DIFFERS: graph:knowledge_graph (replay as recorded: graph-rag task t2: its instruction "
            "differs from the recorded one (sha256:") in "\n".join(outcome["lines"]), outcome["lines"]
    assert outcome["lines"][-1].startswith("NOT REPRODUCED: first differing stage: task t2 (replay as recorded: "
                                           "graph-rag task t2: its instruction differs"), outcome["lines"]
