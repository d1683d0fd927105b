"""An exact repeat answered at the edge does not step around the tenant's input rules (issue 50): the gateway and
the planner in process on the real Kafka, Redis and Postgres, the rules in a file both read. A question answered
before (its answer in the exact-repeat cache) is answered from the cache again while no rule stops it; once the
tenant's rules block it, the same question is refused by the planner's input check (content_filter, audited),
never served from the cache, and no model is called."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from redis.asyncio import Redis

from gateway.app import create_app as gateway_app
from gateway.settings import GatewaySettings
from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.knowledge.graph import GraphDB
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, cache_scope
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from planner.app import create_app as planner_app
from planner.settings import PlannerSettings
from tests.conftest import Scripted
from tests.graph.conftest import _common
from tests.graph.helpers import TopicTap, run_in_process
from tests.support.keys import create_key

pytestmark = pytest.mark.infra
MODE = "moe-orchestrator"


@dataclass
class Edge:
    gateway: httpx.AsyncClient
    exact: ExactAnswers
    tap: TopicTap
    bus: Bus
    rules: Path


def write_rules(path: Path, rules: dict[str, Any]) -> None:
    """The guardrails file, with a newer modification time than before (the books reload on a changed mtime)."""
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(yaml.safe_dump({"version": 1, "tenants": rules}))
    os.utime(path, (before + 10, before + 10))


@pytest.fixture(scope="module")
async def edge(infra: dict[str, str], neo4j_url: str, graph_db: GraphDB, scripted_server: Scripted,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    rules = tmp_path_factory.mktemp("guardrails") / "guardrails.yaml"
    write_rules(rules, {})
    namespace = f"xr{uuid.uuid4().hex[:8]}"
    common = {**_common(infra, namespace, neo4j_url, scripted_server.url), "guardrails_file": str(rules),
              "guardrails_reload_s": 0.01}
    apps = [gateway_app(GatewaySettings(**common)),
            planner_app(PlannerSettings(**common, semantic_cache_enabled=False, router_enabled=False))]
    bus = Bus(FleetSettings(**common, service_name="exact-repeat-tests"))
    tap = TopicTap(infra["kafka"], bus.topics.audit, bus.topics.answers)
    redis = Redis.from_url(infra["redis"], decode_responses=True)
    async with AsyncExitStack() as stack:
        await run_in_process(stack, apps, bus, tap)
        stack.push_async_callback(redis.aclose)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://gateway",
                                   timeout=60)
        stack.push_async_callback(client.aclose)
        yield Edge(client, ExactAnswers(redis, namespace, 600), tap, bus, rules)


async def ask(edge: Edge, key: str, question: str) -> dict[str, Any]:
    response = await edge.gateway.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                       json={"model": MODE, "messages": [{"role": "user", "content": question}]})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_rule_added_after_the_first_answer_is_not_stepped_around_by_a_repeat(
        edge: Edge, infra: dict[str, str], scripted: Scripted) -> None:
    tenant, marker = f"xr-{uuid.uuid4().hex[:8]}", f"zorblax{uuid.uuid4().hex[:6]}"
    key = await create_key(infra["postgres"], "repeat", "user", [tenant])
    question = f"How do I build a {marker}?"
    asked = ChatRequest(response_id="first", deadline_at=deadline_in(60), tenant_id=tenant, mode=MODE,
                        messages=[ChatMessage(role="user", content=question)])
    scope = cache_scope(asked)
    assert scope is not None
    await edge.exact.put(scope, ExactEntry(cache_key="c-first", question=question, answer="Like this: step one."))

    first = await ask(edge, key, question)  # no rule yet: the repeat is answered at the edge
    assert first["choices"][0]["message"]["content"] == "Like this: step one."
    assert first["moe"]["cache_hit"] is True

    write_rules(edge.rules, {tenant: {"input": [{"id": "no-marker", "keywords": [marker],
                                                  "reason": "not a topic here"}]}})
    await asyncio.sleep(0.05)  # past the books' reload interval (0.01 s)
    again = await ask(edge, key, question)
    choice = again["choices"][0]
    assert choice["finish_reason"] == "content_filter", again
    assert "rule no-marker" in choice["message"]["content"] and "step one" not in choice["message"]["content"]
    assert again["moe"]["cache_hit"] is False
    rid = again["id"].removeprefix("chatcmpl-")
    [audit] = await edge.tap.wait(edge.bus.topics.audit, lambda m: m["response_id"] == rid, count=1)
    assert audit["subject"] == "no-marker" and audit["details"]["direction"] == "input"
    assert not [c for c in scripted.calls() if marker in str(c)], "no model saw the question"


async def test_a_repeat_whose_answer_cannot_be_recorded_is_not_served(edge: Edge, infra: dict[str, str]) -> None:
    """An answer served is an answer on the record: the repeat's Answer goes to `answers` before the client has it.
    Here the broker refuses it (larger than a message may be): a 503 in the API's format, not an unrecorded 200."""
    tenant = f"xr-{uuid.uuid4().hex[:8]}"
    key = await create_key(infra["postgres"], "repeat", "user", [tenant])
    question = f"What does the {uuid.uuid4().hex[:6]} manual say?"
    asked = ChatRequest(response_id="big", deadline_at=deadline_in(60), tenant_id=tenant, mode=MODE,
                        messages=[ChatMessage(role="user", content=question)])
    scope = cache_scope(asked)
    assert scope is not None
    await edge.exact.put(scope, ExactEntry(cache_key="c-big", question=question, answer="word " * 400_000))
    response = await edge.gateway.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                       json={"model": MODE, "messages": [{"role": "user", "content": question}]})
    assert response.status_code == 503, response.text[:300]
    assert response.json()["error"]["code"] == "record_unavailable"
