"""research: the SearXNG client against a scripted SearXNG, the pure logic, and the handler on the
in-memory broker (Redis is real)."""

from __future__ import annotations

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Cancel, Progress, ResearchTask, TaskResult, deadline_in
from moe_core.runtime.bus import Bus
from research import core
from research.app import create_app
from research.searxng import SearchError, SearxngClient, WebHit
from research.settings import ResearchSettings
from tests.support.in_memory import collect, scripted_inference
from tests.support.scripted_llm import create_app as scripted_llm
from tests.support.scripted_searxng import create_app as scripted_searxng

pytestmark = pytest.mark.unit

TIDES = [
    {"title": "Tide - Wikipedia", "url": "https://en.wikipedia.org/wiki/Tide", "content": "Tides are the rise and "
     "fall of sea levels caused by the gravity of the Moon and the Sun."},
    {"title": "What causes tides? | NOAA", "url": "https://oceanservice.noaa.gov/facts/tides.html",
     "content": "Gravity and inertia."},
]
MOON = [
    {"title": "Moon  gravity\n", "url": "https://example.org/moon", "content": "The Moon pulls the oceans."},
    {"title": "Tide (duplicate)", "url": "https://EN.wikipedia.org/wiki/Tide/", "content": "same page"},
    {"title": "", "url": "https://example.org/untitled", "content": ""},
    {"title": "not a web page", "url": "ftp://example.org/file", "content": "ignored"},
]


def _searxng(rules: list[dict]) -> tuple[SearxngClient, object]:
    app = scripted_searxng({"rules": rules})
    return SearxngClient("http://searx", http=httpx.AsyncClient(transport=httpx.ASGITransport(app=app))), app


async def test_queries_are_interleaved_deduplicated_and_numbered() -> None:
    client, app = _searxng([{"contains": "tides", "results": TIDES}, {"contains": "moon", "results": MOON}])
    hits = await client.search_all(["why tides", "moon pull"], max_results=10)
    assert [h.url for h in hits] == [
        "https://en.wikipedia.org/wiki/Tide", "https://example.org/moon",
        "https://oceanservice.noaa.gov/facts/tides.html", "https://example.org/untitled"]
    assert hits[1].title == "Moon gravity"  # whitespace normalised
    assert hits[3].title == "https://example.org/untitled"  # no title: the URL
    calls = app.state.searxng.get_calls()  # type: ignore[attr-defined]
    assert sorted(c["q"] for c in calls) == ["moon pull", "why tides"]
    assert all(c["format"] == "json" for c in calls)
    assert len(await client.search_all(["why tides", "moon pull"], max_results=2)) == 2


async def test_one_failing_query_is_tolerated_all_failing_is_an_error() -> None:
    client, _ = _searxng([{"contains": "tides", "results": TIDES}, {"contains": "broken", "status": 500}])
    hits = await client.search_all(["tides", "broken"], max_results=5)
    assert [h.title for h in hits] == ["Tide - Wikipedia", "What causes tides? | NOAA"]
    with pytest.raises(SearchError, match="HTTP 500"):
        await client.search_all(["broken"], max_results=5)


async def test_json_format_disabled_is_explained() -> None:
    async def html_only(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="Forbidden")

    client = SearxngClient("http://searx", http=httpx.AsyncClient(transport=httpx.MockTransport(html_only)))
    with pytest.raises(SearchError, match="json format"):
        await client.search("anything")


async def test_unreachable_searxng_is_a_search_error() -> None:
    client = SearxngClient("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(SearchError, match="unreachable"):
        await client.search("anything")


def test_digest_sources_and_content_share_the_numbering() -> None:
    hits = [WebHit("A", "https://a.example", "alpha"), WebHit("B", "https://b.example", "")]
    assert core.digest(hits) == "[1] A\nhttps://a.example\nalpha\n\n[2] B\nhttps://b.example"
    assert [(s.kind, s.ref, s.title, s.url) for s in core.sources(hits)] == [
        ("web", "web:1", "A", "https://a.example"), ("web", "web:2", "B", "https://b.example")]
    assert core.content(hits, "Alpha it is [1].") == (
        "Alpha it is [1].\n\nSources:\n[1] A — https://a.example\n[2] B — https://b.example")
    assert core.content(hits, None) == core.digest(hits)
    assert core.content([], "anything") == ""
    assert core.confidence(hits) == "medium" and core.confidence(hits[:1]) == "low"


def test_queries_default_to_the_question_and_are_bounded() -> None:
    task = ResearchTask(response_id="r", tenant_id="t", deadline_at=deadline_in(9), task_id="r1",
                        question="  why   tides ")
    assert core.queries_for(task, 3) == ["why tides"]
    task = task.model_copy(update={"queries": ["a", "A", "b", "c", "d", " "]})
    assert core.queries_for(task, 3) == ["a", "b", "c"]


def _app(namespace: str, redis, searx_rules: list[dict], llm_rules: list[dict]):
    llm = scripted_llm({"models": ["m"], "rules": llm_rules})
    settings = ResearchSettings(topic_namespace=namespace,
                                inference_servers='[{"name":"s","url":"http://s","models":["m"],"max_retries":0}]')
    inference = scripted_inference(settings, llm)
    searxng, searx_app = _searxng(searx_rules)
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, searxng=searxng, manage_broker=False)
    results = collect(bus, bus.topics.results, TaskResult)
    progress = collect(bus, bus.topics.progress, Progress)
    return bus, llm, searx_app, results, progress


def _task(namespace: str, **kw) -> ResearchTask:
    return ResearchTask(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30), task_id="r1",
                        question="Why are there tides?", **kw)


@pytest.mark.infra  # real stores
async def test_handler_publishes_a_cited_summary_once(redis, namespace: str) -> None:
    bus, llm, searx, results, progress = _app(
        namespace, redis, [{"contains": "tides", "results": TIDES}],
        [{"system_contains": "web search results", "reply": "The Moon's gravity raises the sea [1][2]."}])
    task = _task(namespace, queries=["why tides"], category="research")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(task, bus.topics.tasks_research)
        await bus.publish(task, bus.topics.tasks_research)  # redelivery: same result, no second search or call
    assert len(results) == 2 and results[0].model_dump(exclude={"trace"}) == results[1].model_dump(exclude={"trace"})
    result = results[0]
    assert (result.kind, result.category, result.task_id, result.error) == ("research", "research", "r1", None)
    assert result.content.startswith("The Moon's gravity raises the sea [1][2].\n\nSources:\n[1] Tide - Wikipedia")
    assert [s.url for s in result.sources] == [h["url"] for h in TIDES]
    assert result.model == "m" and result.usage.completion_tokens == 7
    summary_call = llm.state.scripted.get_calls()  # type: ignore[attr-defined]
    assert len(summary_call) == 1 and "[2] What causes tides? | NOAA" in summary_call[0]["messages"][1]["content"]
    assert len(searx.state.searxng.get_calls()) == 1  # type: ignore[attr-defined]
    assert [p.event for p in progress] == ["researching", "researched", "researched"]


@pytest.mark.infra  # real stores
async def test_no_hits_is_an_empty_result_and_no_model_call(redis, namespace: str) -> None:
    bus, llm, _, results, _ = _app(namespace, redis, [], [])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_task(namespace), bus.topics.tasks_research)
    assert results[0].content == "" and results[0].error is None and results[0].sources == []
    assert llm.state.scripted.get_calls() == []  # type: ignore[attr-defined]


@pytest.mark.infra  # real stores
async def test_search_failure_is_an_error_result(redis, namespace: str) -> None:
    bus, _, _, results, progress = _app(namespace, redis, [{"contains": "tides", "status": 502}], [])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_task(namespace), bus.topics.tasks_research)
    assert results[0].error is not None and "HTTP 502" in results[0].error
    assert progress[-1].event == "failed"


@pytest.mark.infra  # real stores
async def test_summary_failure_falls_back_to_the_digest(redis, namespace: str) -> None:
    bus, _, _, results, _ = _app(namespace, redis, [{"contains": "tides", "results": TIDES}], [{"status": 500}])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_task(namespace), bus.topics.tasks_research)
    assert results[0].content.startswith("[1] Tide - Wikipedia\nhttps://en.wikipedia.org/wiki/Tide\n")
    assert results[0].model is None and results[0].usage.total_tokens == 0


@pytest.mark.infra  # real stores
async def test_a_cancelled_request_makes_no_model_call(redis, namespace: str) -> None:
    bus, llm, searx, results, _ = _app(namespace, redis, [{"contains": "tides", "results": TIDES}], [])
    task = _task(namespace)
    async with TestKafkaBroker(bus.broker):
        await bus.publish(Cancel(**task.child_fields()), bus.topics.cancel)
        await bus.publish(task, bus.topics.tasks_research)
    assert results[0].error == "cancelled"
    assert llm.state.scripted.get_calls() == []  # type: ignore[attr-defined]
    assert searx.state.searxng.get_calls() == []  # type: ignore[attr-defined]
