"""Research as a planned task, end to end with the official openai SDK (scripted models, scripted SearXNG):
a current-events question -> the planner model plans a research task with a query -> the research stage
searches the web for exactly that query -> the judge cites the results -> the answer's [1], [2] are the
sources listed in moe.sources (ref web:n, title, url)."""

from __future__ import annotations

import json
import uuid

import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, expected_usage
from tests.e2e.moe_core.llm.test_modes import THINK, ask
from tests.e2e.research_fixtures import Searx

pytestmark = pytest.mark.e2e
RESULTS = [{"title": "Apache Kafka 4.1.0 release notes", "url": "https://kafka.apache.org/41/release-notes",
            "content": "Kafka 4.1 adds queues for Kafka (KIP-932) as a preview."},
           {"title": "Kafka 4.1 upgrade guide", "url": "https://kafka.apache.org/41/upgrade",
            "content": "ZooKeeper mode is gone since 4.0."}]
ANSWER = "Kafka 4.1 previews share groups (queues) [1]; ZooKeeper is gone since 4.0 [2]."


def _plan(m: str) -> str:
    return json.dumps({"tasks": [
        {"kind": "expert", "category": "technical_support", "instruction": f"Explain what changed in Kafka {m}"},
        {"kind": "research", "category": "research", "instruction": "Find the latest release notes",
         "query": f"Apache Kafka latest release notes {m}"}]})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_current_events_question_gets_a_planned_web_search_and_numbered_sources(
        stream: bool, base_url: str, api_key: str, scripted: Scripted, searxng: Searx) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": _plan(m)},
        {"model": "expert-model", "system_contains": "web search results", "contains": m,
         "reply": "Queues arrive in 4.1 [1]. ZooKeeper was removed in 4.0 [2]."},
        {"model": "expert-model", "contains": m, "reply": "Read the release notes.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": m, "system_contains": THINK, "reply": "The web is current."},
        {"model": "judge-model", "contains": m, "reply": ANSWER},
    ])
    searxng.script([{"contains": m, "results": RESULTS}])
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    reply = await ask(client, "moe-orchestrator", f"What changed in the latest Kafka release? {m}", stream)

    queries = [c["q"] for c in searxng.calls() if m in c.get("q", "")]
    assert queries == [f"Apache Kafka latest release notes {m}"], "the research stage searched the planned query"
    calls = calls_for(scripted.calls(), m)
    planner = next(c for c in calls if c["model"] == "planner-model")
    assert "current or external facts" in planner["messages"][0]["content"]
    summary = [c for c in calls if "web search results" in "".join(str(x.get("content")) for x in c["messages"])]
    assert len(summary) == 1 and "[2] Kafka 4.1 upgrade guide" in summary[0]["messages"][-1]["content"]
    judge = next(c for c in calls if c["model"] == "judge-model" and THINK not in c["messages"][0]["content"])
    assert "Cite web facts as [n]" in judge["messages"][0]["content"]
    assert "ZooKeeper was removed in 4.0 [2]." in judge["messages"][-1]["content"]

    assert reply.content == ANSWER
    web = [s for s in reply.moe["sources"] if s["kind"] == "web"]
    assert web == [{"kind": "web", "ref": f"web:{n}", "title": r["title"], "url": r["url"], "type": "web",
                    "label": r["title"]} for n, r in enumerate(RESULTS, 1)], \
        "each [n] of the answer is moe.sources' web:n"
    assert {"research", "technical_support"} <= set(reply.moe["experts_used"])
    assert reply.moe["missing"] == []
    assert reply.usage == expected_usage(calls), "the planner, research summary, expert and judge calls"
