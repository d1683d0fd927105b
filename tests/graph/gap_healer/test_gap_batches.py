"""The unknown terms of several questions classified in one model call (gap_healer.batch) on the real broker, Neo4j
and the scripted model: each term learned as when asked alone; a failing call leaves every term of its batch open
with the error (the heal run retries it), none lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import ask
from tests.graph.helpers import relations, titles

pytestmark = pytest.mark.infra
BATCH = "You classify each term"  # gap_healer.core.batch_messages
GAP = "MATCH (g:OntologyGap {tenant: $t}) RETURN g.term AS term, g.state AS state, g.last_error AS error"


def entry(name: str, parent: str) -> dict[str, Any]:
    return {"is_entity": True, "name": name, "parent": parent, "domain": "technical", "confidence": 0.9}


async def test_the_terms_of_several_questions_are_classified_in_one_call_each_learned(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    first, second, third = (f"{w}{uuid.uuid4().hex[:6]}" for w in ("florbex", "drazzle", "quimbat"))
    reply = {first: entry(first.capitalize(), "Framework"), second: entry(second.capitalize(), "Protocol"),
             third: entry(third.capitalize(), "Database")}
    # only a call holding the terms of both questions gets the classifications; another gets "ok" (rejected)
    scripted.script([{"model": "expert-model", "system_contains": BATCH, "contains": f"- {first}\n- {second}\n",
                      "reply": json.dumps(reply)}], default_reply="ok")
    one, two = await asyncio.gather(ask(graph_services, tenant, f"{first} and {second}?"),
                                    ask(graph_services, tenant, f"What is {third}?"))
    assert (one["data"]["unknown_terms"], two["data"]["unknown_terms"]) == ([first, second], [third])
    healed = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["tenant_id"] == tenant
                                           and m["action"] == "gap_healed", count=3)
    assert {h["response_id"] for h in healed} == {one["response_id"], two["response_id"]}  # each under its request
    calls = [c for c in scripted.calls() if "You classify" in c["messages"][0]["content"]]
    assert len(calls) == 1 and f"- {third}\nSeen in the question: What is {third}?" in calls[0]["messages"][1][
        "content"]  # one call, each question's terms with their own context
    assert titles(await relations(graph_db, tenant)) == sorted([
        f"{first.capitalize()} IS_A Framework", f"{second.capitalize()} IS_A Protocol",
        f"{third.capitalize()} IS_A Database"])


async def test_a_failing_batch_leaves_every_term_open_with_its_error(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    first, second = f"snorvat{uuid.uuid4().hex[:6]}", f"glimmox{uuid.uuid4().hex[:6]}"
    scripted.script([{"model": "expert-model", "system_contains": BATCH, "status": 500, "reply": "down"}])
    await asyncio.gather(ask(graph_services, tenant, f"What is {first}?"),
                         ask(graph_services, tenant, f"What is {second}?"))
    for _ in range(100):  # no audit event for a failed classification: the gaps' state says it
        rows = await graph_db.read(GAP, t=tenant)
        if len([r for r in rows if r["error"]]) == 2:
            break
        await asyncio.sleep(0.1)
    assert sorted((r["term"], r["state"], bool(r["error"])) for r in rows) == sorted(
        [(first, "open", True), (second, "open", True)])
    assert len([c for c in scripted.calls() if "You classify" in c["messages"][0]["content"]]) == 1
