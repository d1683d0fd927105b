"""`replay rebuild graph` on the real broker and Neo4j: answers learned by the live graph-ingest (and a rating)
are re-applied from the topics into a scratch namespace and equal the live graph; a tampered and a removed
live fact are then named as differences. The live tenant is only read by the rebuild."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from moe_core.contracts import Feedback, deadline_in
from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices, graph_db, graph_services, neo4j_url, tenant  # noqa: F401 (fixtures)
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event, learn
from tests.graph.helpers import relations
from tests.support.fleet import REPO
from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.infra


async def replay(svc: GraphServices, infra: dict[str, str], *args: str) -> tuple[int, str]:
    user, password = neo4j_auth()
    env = {**os.environ, "MOE_TOPIC_NAMESPACE": svc.namespace, "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
           "MOE_NEO4J_URL": infra["neo4j"], "MOE_NEO4J_USER": user, "MOE_NEO4J_PASSWORD": password}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "codex_lineage.replay", *args, env=env,
                                                cwd=REPO, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return int(proc.returncode or 0), out.decode()


async def test_the_rebuilt_graph_equals_the_live_one_and_tampering_is_named(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str,  # noqa: F811
        infra: dict[str, str]) -> None:
    since = datetime.now(UTC) - timedelta(seconds=2)
    first, second = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    scripted.script([
        extraction_rule(first, [("Zorvatin", "TREATS", "Migraine", 0.9),
                                ("Zorvatin", "INTERACTS_WITH", "Warfarin", 0.8),
                                ("Zorvatin", "IS_A", "Drug", 0.9)]),  # dense (blast radius): quarantined
        extraction_rule(second, [("Zorvatin", "CAUSES", "Dizziness", 0.6)])])
    await learn(graph_services, ingest_event(tenant, first, synthesis_insight="Zorvatin is a migraine drug."))
    await learn(graph_services, ingest_event(tenant, second))
    admin = {"Authorization": f"Bearer {await graph_services.admin_key_for(tenant)}"}
    # held: the dense one, and the medical ones (learned triples in protected domains wait for review)
    held = (await graph_services.gateway.get("/graph/quarantine", headers=admin)).json()["data"]
    assert {h["relation"] for h in held} >= {"IS_A", "TREATS", "INTERACTS_WITH"}
    for item in held:  # the medical ones by two principals (four eyes)
        approved = await graph_services.approve(item["id"], tenant)
        assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    ids = {r["type"]: r["id"] for r in await relations(graph_db, tenant)}
    assert sorted(ids) == ["CAUSES", "INTERACTS_WITH", "IS_A", "TREATS"]
    rating = Feedback(response_id=f"f-{uuid.uuid4().hex[:10]}", tenant_id=tenant, deadline_at=deadline_in(60),
                      rating=5, graph_refs=[ids["TREATS"]])
    await graph_services.publish(rating, "feedback")
    await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["response_id"] == rating.response_id
                                  and m["action"] == "relations_verified")
    window = ("--since", since.isoformat(), "--until", (datetime.now(UTC) + timedelta(seconds=2)).isoformat())

    code, out = await replay(graph_services, infra, "rebuild", "graph", *window)
    assert code == 0, out
    assert "EQUAL: the live graph holds the " in out and "as they wrote them (imports, admin edits" in out
    assert f"2 answers learned, {len(held)} quarantine approvals" in out
    assert "not rebuilt" not in out
    leftovers = await graph_db.read("MATCH (n) WHERE n.tenant STARTS WITH '~rebuild-' AND n.tenant ENDS WITH $t "
                                    "RETURN count(n) AS n", t=tenant)
    assert leftovers[0]["n"] == 0  # the scratch namespace is dropped
    assert len(await relations(graph_db, tenant)) == 4  # the live graph is untouched

    await graph_db.write("MATCH ()-[r:REL {id: $id}]->() SET r.verified = false", id=ids["TREATS"])
    await graph_db.write("MATCH ()-[r:REL {id: $id}]->() DELETE r", id=ids["CAUSES"])
    code, out = await replay(graph_services, infra, "rebuild", "graph", *window)
    assert code == 1, out
    assert "DIFFERENT: 1 only live" in out
    only_live = [line for line in out.splitlines() if "only in the live graph" in line]
    only_rebuilt = [line for line in out.splitlines() if "only in the rebuild" in line]
    assert len(only_live) == 1 and "-TREATS-> migraine" in only_live[0] and "verified=False" in only_live[0]
    assert any("-TREATS-> migraine" in line and "verified=True" in line for line in only_rebuilt)
    assert any("-CAUSES-> dizziness" in line for line in only_rebuilt)


async def test_bad_arguments_are_refused(graph_services: GraphServices, infra: dict[str, str]) -> None:  # noqa: F811
    code, out = await replay(graph_services, infra, "rebuild", "graph", "--since", "yesterday", "--until", "now")
    assert code == 2 and "invalid when value" in out
