"""The critic closes the loop, on the real broker, Redis, Chroma and Neo4j: critic, planner (semantic cache)
and graph-ingest run in this process under their own namespace. A "wrong" verdict flags the answer's cache
entry (Chroma flagged, the exact repeat gone) and the graph fact it cited (flagged, out of the context) like a
1-star rating, and counts in no model score; a "right" verdict changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from fleetlib import api as fleetlib_api
from redis.asyncio import Redis

from critic.app import create_app as critic_app
from critic.settings import CriticSettings
from expert_worker.scoring import ScoreBoard
from graph_ingest.app import create_app as graph_ingest_app
from graph_ingest.settings import GraphIngestSettings
from moe_core.contracts import (
    Answer,
    ChatMessage,
    ChatRequest,
    Draft,
    Feedback,
    ModelUse,
    Source,
    deadline_in,
)
from moe_core.knowledge.graph import GraphDB
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from planner.app import Planner
from planner.app import create_app as planner_app
from planner.semantic_cache import cache_key, cache_scope
from planner.settings import PlannerSettings
from tests.conftest import Scripted
from tests.graph.conftest import _common
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event
from tests.graph.helpers import TopicTap, relations, run_in_process

pytestmark = pytest.mark.infra
REVIEW = "You review"  # a phrase of the critic's system prompt


@dataclass
class Loop:
    namespace: str
    bus: Bus
    tap: TopicTap
    planner: Planner
    redis: Redis


@pytest.fixture(scope="module")
async def loop(infra: dict[str, str], neo4j_url: str, graph_db: GraphDB,
               scripted_server: Scripted) -> AsyncIterator[Loop]:
    fleetlib_api.ensure_up(["chroma"])
    namespace = f"cf{uuid.uuid4().hex[:8]}"
    common = _common(infra, namespace, neo4j_url, scripted_server.url)
    apps = [graph_ingest_app(GraphIngestSettings(**common, graph_trust_recompute_s=0)),
            planner_app(PlannerSettings(**common, chroma_url=infra["chroma"], router_enabled=False)),
            critic_app(CriticSettings(**common))]
    bus = Bus(FleetSettings(**common, service_name="critic-flag-tests"))
    tap = TopicTap(infra["kafka"], bus.topics.audit, bus.topics.feedback, bus.topics.answers)
    redis = Redis.from_url(infra["redis"], decode_responses=True)
    planner: Planner = apps[1].state.planner
    async with AsyncExitStack() as stack:
        await run_in_process(stack, apps, bus, tap)
        stack.push_async_callback(redis.aclose)
        yield Loop(namespace, bus, tap, planner, redis)
        assert planner.cache is not None and planner.vectors is not None
        await planner.vectors.drop(planner.cache.name)


async def eventually(check: Any, timeout_s: float = 30) -> Any:
    """Await a state the fleet reaches asynchronously (polls the real store)."""
    end = asyncio.get_running_loop().time() + timeout_s
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < end, "the expected state was not reached"
        await asyncio.sleep(0.05)
    return result


async def _fact(loop: Loop, db: GraphDB, scripted: Scripted, tenant: str, subject: str) -> str:
    """One relation learned the real way (an answer ingested): its id."""
    marker = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(marker, [(subject, "PART_OF", "Glorp Kit", 0.9)])])  # no review needed
    event = ingest_event(tenant, marker, knowledge_type="technical", source_expert="technical_support")
    await loop.bus.publish(event, loop.bus.topics.ingest)
    await loop.tap.wait(loop.bus.topics.audit,
                        lambda m: m["response_id"] == event.response_id and m["action"] == "ingested")
    return next(r["id"] for r in await relations(db, tenant) if r["subject"] == subject)


async def _cached_answer(loop: Loop, tenant: str, question: str, fact: str) -> tuple[Answer, str]:
    """An answer stored in the semantic cache (and as an exact repeat) the way the fleet stores one: the
    planner remembered the plan's key, the answer arrives on `answers`."""
    cache = loop.planner.cache
    assert cache is not None
    request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id=tenant, deadline_at=deadline_in(60),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
    scope = cache_scope(request)
    assert scope is not None
    key = cache_key(scope, question, request.response_id)
    await cache.remember(key, scope, request, question)
    content = (f"{question} Take 4 g an hour, every hour, for as long as the cough lasts; no doctor needs to "
               "see you first (a wrong answer, long enough to be cached).")
    answer = Answer(**request.child_fields(), mode="moe-orchestrator", content=content,
                    cache_key=key, question=question, experts_used=["medical_consult"],
                    models_used=[ModelUse(model="expert-model", category="medical_consult")],
                    sources=[Source(kind="expert", ref="medical_consult:expert-model@scripted"),
                             Source(kind="graph", ref=fact, title="fact")])
    exact = cache.exact.key(scope, question)
    await loop.bus.publish(answer, loop.bus.topics.answers)
    await eventually(lambda: _entry(loop, key))
    await eventually(lambda: loop.redis.exists(exact))
    return answer, exact


async def _entry(loop: Loop, key: str) -> dict[str, Any] | None:
    assert loop.planner.cache is not None and loop.planner.vectors is not None
    collection = await loop.planner.vectors.collection(loop.planner.cache.name)
    found = await collection.get(ids=[key], include=["metadatas"])
    return dict(found["metadatas"][0]) if found["ids"] else None


async def _review(loop: Loop, scripted: Scripted, answer: Answer, verdict: str) -> dict[str, Any]:
    """The draft of `answer` goes to the critic, whose model replies `verdict`: the answer the user gets."""
    scripted.script([{"model": "judge-model", "system_contains": REVIEW, "contains": answer.response_id[1:],
                      "reply": verdict}])
    question = f"{answer.question} ({answer.response_id[1:]})"
    draft = Draft(**answer.child_fields(), question=question, categories=["medical_consult"], answer=answer)
    await loop.bus.publish(draft, loop.bus.topics.drafts)
    [final] = await loop.tap.wait(loop.bus.topics.answers,
                                  lambda m: m["response_id"] == answer.response_id and "Critic" in m["reasoning"])
    return final


async def test_a_wrong_verdict_flags_the_cache_entry_and_the_cited_fact_and_a_right_one_changes_nothing(
        loop: Loop, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    right_fact = await _fact(loop, graph_db, scripted, tenant, "Calmorex")
    wrong_fact = await _fact(loop, graph_db, scripted, tenant, "Brontazol")
    right, right_exact = await _cached_answer(loop, tenant, f"Is Calmorex good for a cough? {tenant}", right_fact)
    wrong, wrong_exact = await _cached_answer(loop, tenant, f"Is Brontazol good for a cough? {tenant}", wrong_fact)

    final = await _review(loop, scripted, right, "CONFIRMED")
    assert final["content"] == right.content
    final = await _review(loop, scripted, wrong, "WRONG: Brontazol does not treat coughs; ask a doctor.")
    assert final["content"] == "Brontazol does not treat coughs; ask a doctor."

    # the wrong verdict: the same Feedback a 1-star rating is, from the critic ...
    [flag] = await loop.tap.wait(loop.bus.topics.feedback, lambda m: m["response_id"] == wrong.response_id)
    assert (flag["source"], flag["rating"], flag["cache_key"], flag["graph_refs"], flag["models_used"]) == (
        "critic", 1, wrong.cache_key, [wrong_fact], [])
    # ... the cited fact is flagged by graph-ingest (audited as the critic's) and leaves the context ...
    [audit] = await loop.tap.wait(loop.bus.topics.audit, lambda m: m["response_id"] == wrong.response_id)
    assert (audit["action"], audit["details"]["relations"], audit["details"]["source"]) == (
        "relations_flagged", [wrong_fact], "critic")
    assert audit["reason"] == "critic rating 1 (critic verdict: wrong)"
    rows = {r["id"]: r for r in await relations(graph_db, tenant)}
    assert (rows[wrong_fact]["flagged"], rows[wrong_fact]["verified"]) == (True, False)
    # ... the cache entry is flagged in Chroma and its exact repeat is gone
    assert wrong.cache_key is not None and right.cache_key is not None
    entry = await eventually(lambda: _flagged(loop, str(wrong.cache_key)))
    assert entry["flagged_by"] == wrong.response_id
    assert not await loop.redis.exists(wrong_exact)
    # no model score counts it: the flag names no model (what the expert-worker's scoreboard does with it)
    board = ScoreBoard(loop.redis, loop.namespace, min_score=0.5, min_ratings=1, half_life_s=0)
    assert await board.record(Feedback.model_validate(flag)) is False
    assert (await board.score("medical_consult", "expert-model", tenant)).n == 0

    # the right verdict changed nothing: no flag, the entry and its repeat stay, the fact is not flagged
    assert not loop.tap.seen(loop.bus.topics.feedback, lambda m: m["response_id"] == right.response_id)
    assert await loop.redis.get(f"critic:flag:{loop.namespace}:{right.response_id}") is None
    assert (await _entry(loop, str(right.cache_key)) or {}).get("flagged") is False
    assert await loop.redis.exists(right_exact)
    assert not rows[right_fact]["flagged"] and rows[right_fact]["version"] == 1


async def _flagged(loop: Loop, key: str) -> dict[str, Any] | None:
    entry = await _entry(loop, key)
    return entry if entry and entry.get("flagged") else None
