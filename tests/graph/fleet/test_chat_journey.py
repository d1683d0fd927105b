"""The whole loop through the gateway with the official openai SDK: knowledge given to
POST /v1/memory/ingest is learned, a later related question's judge receives it as context and cites
it (moe.sources has the relation), a bad rating flags it, and the next question no longer sees it.
planner, expert-worker and merger run as real processes; the graph services and the gateway run in the
test process (all on the real broker, Neo4j, Redis and Postgres). A procedural question gets the requirement chains
learned earlier as the [Procedural Requirements] block, and the judge's insight block becomes a :Synthesis node."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted, scripted_env
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import EXTRACT, approve_held, extraction_rule, ingest_event, learn
from tests.graph.helpers import relations
from tests.support.fleet import ServiceProcess, free_port
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e
STAGES = ("planner", "expert-worker", "merger")


@pytest.fixture(scope="module")
def chat_stages(graph_services: GraphServices, infra: dict[str, str], scripted_server: Scripted
                ) -> Iterator[dict[str, ServiceProcess]]:
    env = {**os.environ, **scripted_env(scripted_server.url), "MOE_TOPIC_NAMESPACE": graph_services.namespace,
           "MOE_KAFKA_BOOTSTRAP": infra["kafka"], "MOE_REDIS_URL": infra["redis"],
           "MOE_POSTGRES_DSN": infra["postgres"], "MOE_CHROMA_URL": infra["chroma"], "MOE_CONSUMER_WORKERS": "1",
           # the plan comes from the scripted planner model: no cache, router or trivial-question shortcut
           "MOE_SEMANTIC_CACHE_ENABLED": "false", "MOE_ROUTER_ENABLED": "false", "MOE_PLAN_CACHE_ENABLED": "false",
           "MOE_PLANNER_SKIP_TRIVIAL": "false"}
    stages = {name: ServiceProcess(name, free_port(), {**env, "MOE_HTTP_PORT": "0"}) for name in STAGES}
    for stage in stages.values():
        stage.env["MOE_HTTP_PORT"] = str(stage.port)
        stage.start()
    try:
        for stage in stages.values():
            stage.wait_ready()
        yield stages
    finally:
        for stage in stages.values():
            stage.stop()


def chat_rules(marker: str, judge_reply: str) -> list[dict[str, Any]]:
    return [
        {"system_contains": EXTRACT, "contains": marker, "reply": json.dumps({"triples": []})},  # learn nothing
        {"model": "planner-model", "contains": marker,
         "reply": json.dumps({"tasks": [{"category": "general", "instruction": f"Answer {marker}"}]})},
        {"model": "expert-model", "contains": marker, "reply": "Ask a doctor.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": marker, "reply": judge_reply},
    ]


def judge_prompt(scripted: Scripted, marker: str) -> str:
    """What the merger's model calls (thinking step and judge) were shown for this request."""
    calls = [c for c in scripted.calls("judge-model") if marker in str(c["messages"])]
    assert calls, "the judge was not called"
    return "\n".join(str(m["content"]) for c in calls for m in c["messages"])


async def wait_for(check: Any, what: str, timeout_s: float = 60) -> Any:
    """Wait for a state the fleet reaches asynchronously (polls the real store)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen")


async def test_learned_knowledge_reaches_the_judge_is_cited_and_a_bad_rating_removes_it(
        graph_services: GraphServices, chat_stages: dict[str, ServiceProcess], graph_db: GraphDB,
        scripted: Scripted, tenant: str) -> None:
    learn, first, second = (uuid.uuid4().hex[:8] for _ in range(3))
    scripted.script([extraction_rule(learn, [("Trembolex", "TREATS", "Night Cramps", 0.9)]),
                     *chat_rules(first, "Trembolex helps with night cramps [REF:Trembolex]."),
                     *chat_rules(second, "No known remedy.")])
    user = await graph_services.user_key_for(tenant)
    gateway = graph_services.gateway
    accepted = await gateway.post("/v1/memory/ingest", headers={"Authorization": f"Bearer {user}"},
                                  json={"text": "Trembolex treats night cramps.", "question": f"Cramps? {learn}"})
    assert accepted.status_code == 202, accepted.text  # a user's note (its Claude Code hook, say)
    await approve_held(graph_services, tenant, accepted.json()["id"], 1)  # medical: written once two admins approve
    [fact] = await relations(graph_db, tenant)
    assert (fact["subject"], fact["type"], fact["object"]) == ("Trembolex", "TREATS", "Night Cramps")

    client = openai.AsyncOpenAI(api_key=user, base_url="http://gateway/v1", max_retries=0,
                                http_client=httpx.AsyncClient(transport=gateway._transport, timeout=90))
    question = "How can trembolex ease my night cramps?"  # not trivial: the plan gets a graph task
    response = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"{question} {first}"}])
    assert response.choices[0].message.content == "Trembolex helps with night cramps."
    assert "- Trembolex TREATS Night Cramps [0.46]" in judge_prompt(scripted, first)  # 0.9 x 0.85 x 0.6
    sources = moe(response)["sources"]
    assert {"kind": "graph", "ref": fact["id"], "title": "Trembolex TREATS Night Cramps",  # and the original's shape:
            "type": "neo4j", "label": "Trembolex TREATS Night Cramps"} in sources

    rated = await gateway.post("/v1/feedback", headers={"Authorization": f"Bearer {user}"},
                               json={"response_id": response.id, "rating": 1})
    assert rated.status_code in (200, 202), rated.text

    async def flagged() -> bool:
        return any(r["flagged"] for r in await relations(graph_db, tenant))
    await wait_for(flagged, "flagging the cited relation")
    again = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"{question} {second}"}])
    assert again.choices[0].message.content == "No known remedy."
    assert "Trembolex TREATS Night Cramps" not in judge_prompt(scripted, second)
    await client.close()


async def test_a_procedural_question_gets_the_requirements_block_and_the_judges_insight_becomes_a_synthesis_node(
        graph_services: GraphServices, chat_stages: dict[str, ServiceProcess], graph_db: GraphDB,
        scripted: Scripted, tenant: str) -> None:
    """Through the gateway and the whole fleet: requirement chains learned from a procedural answer reach the
    judge of a later procedural question as the [Procedural Requirements] block; the judge's insight block is
    not in the user's answer and is kept as a :Synthesis node of the answer."""
    m = uuid.uuid4().hex[:8]
    action = f"Renew Glorbian Permit {m}"
    learned = {"triples": [
        {"subject": action, "relation": "REQUIRES", "object": f"Glorbian Birth Record {m}", "confidence": 0.9},
        {"subject": action, "relation": "PERFORMED_AT", "object": f"Glorbian Permit Office {m}", "confidence": 0.9}]}
    insight = {"summary": f"Renewing the permit {m} means bringing the birth record to the permit office.",
               "entities": [action, f"Glorbian Permit Office {m}"], "insight_type": "procedural"}
    answer = "Bring your Glorbian birth record to the permit office."
    scripted.script([
        {"model": "expert-model", "system_contains": "procedural requirements", "contains": m,
         "reply": json.dumps(learned)},  # requirement chains: of the earlier answer, and again of this one
        {"model": "judge-model", "contains": m, "system_contains": "think briefly", "reply": "The graph says."},
        *chat_rules(m, f"{answer}<SYNTHESIS_INSIGHT>{json.dumps(insight)}</SYNTHESIS_INSIGHT>")])
    await learn(graph_services, ingest_event(
        tenant, m, question=f"How do I renew my glorbian permit {m}?", answer="Bring the record to the office.",
        knowledge_type="procedural", source_expert="general"))
    assert len(await relations(graph_db, tenant)) == 2

    user = await graph_services.user_key_for(tenant)
    client = openai.AsyncOpenAI(api_key=user, base_url="http://gateway/v1", max_retries=0,
                                http_client=httpx.AsyncClient(transport=graph_services.gateway._transport, timeout=90))
    response = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"How do I renew glorbian permit {m}?"}])
    await client.close()
    assert response.choices[0].message.content == answer  # the block is stripped from what the user gets
    prompt = judge_prompt(scripted, m)
    assert "[Procedural Requirements]" in prompt
    assert f"- {action} -> REQUIRES Glorbian Birth Record {m}" in prompt
    assert f"- {action} -> PERFORMED_AT Glorbian Permit Office {m}" in prompt

    async def synthesis() -> list[dict[str, Any]]:
        return await graph_db.read(
            "MATCH (s:Synthesis {tenant: $t}) OPTIONAL MATCH (s)-[:ABOUT]->(e) RETURN s.text AS text, "
            "s.insight_type AS type, s.response_id AS rid, collect(e.name) AS about", t=tenant)
    [node] = await wait_for(synthesis, "the :Synthesis node of the judge's insight")
    assert (node["text"], node["type"]) == (insight["summary"], "procedural")
    assert response.id == f"chatcmpl-{node['rid']}"  # the node of this answer
    assert action in node["about"]
