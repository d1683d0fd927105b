"""research: research tasks -> web results (SearXNG), numbered sources and a cited summary."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from redis.asyncio import Redis

from moe_core.bus import Bus, wait_positioned
from moe_core.cancellation import Cancellations, RequestCancelled
from moe_core.contracts import Progress, ResearchTask, TaskResult, Usage
from moe_core.idempotency import Memo
from moe_core.inference import InferenceClient, InferenceConfig, InferenceError
from moe_core.service import create_service_app
from moe_core.stores import redis_client, redis_ready
from research import core
from research.searxng import SearchError, SearxngClient, WebHit
from research.settings import ResearchSettings

log = logging.getLogger(__name__)


class Researcher:
    def __init__(self, settings: ResearchSettings, bus: Bus, inference: InferenceClient, redis: Redis,
                 searxng: SearxngClient) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.searxng = searxng
        self.memo = Memo(redis, "research:result", settings.result_ttl_s)
        self.cancels = Cancellations(redis, settings.topic_namespace)

    async def handle(self, task: ResearchTask) -> None:
        key = f"{task.response_id}:{task.task_id}"
        stored = await self.memo.get(key)
        if stored:
            result = TaskResult.model_validate_json(stored)
        else:
            queries = core.queries_for(task, self.settings.research_max_queries)
            await self._progress(task, "researching", "; ".join(queries))
            result = await self._run(task, queries)
            result = TaskResult.model_validate_json(await self.memo.put_first(key, result.model_dump_json()))
        await self.bus.publish(result, self.bus.topics.results)
        detail = result.error or f"{len(result.sources)} sources"
        await self._progress(task, "failed" if result.error else "researched", detail)

    async def _run(self, task: ResearchTask, queries: list[str]) -> TaskResult:
        started = time.perf_counter()
        base = {**task.child_fields(), "task_id": task.task_id, "kind": "research", "category": task.category}
        if task.expired():
            return TaskResult(**base, confidence="low", error="deadline passed before the task started")
        try:
            hits = await self.cancels.run(task.response_id, self.searxng.search_all(
                queries, task.max_results, timeout_s=task.remaining_seconds()))
            summary, model, server, usage = await self._summarise(task, hits)
        except SearchError as exc:
            log.warning("web search failed: %s", exc)
            return TaskResult(**base, confidence="low", error=f"web search failed: {exc}",
                              duration_ms=(time.perf_counter() - started) * 1000)
        except RequestCancelled:
            return TaskResult(**base, confidence="low", error="cancelled")
        return TaskResult(**base, content=core.content(hits, summary), confidence=core.confidence(hits),
                          sources=core.sources(hits), model=model, server=server, usage=usage,
                          data={"queries": queries, "hits": len(hits)},
                          duration_ms=(time.perf_counter() - started) * 1000)

    async def _summarise(self, task: ResearchTask,
                         hits: list[WebHit]) -> tuple[str | None, str | None, str | None, Usage]:
        """A cited summary by the `research` role's model; without one the judge reads the digest."""
        if not hits or not self.settings.research_summarise:
            return None, None, None, Usage()
        try:
            done = await self.cancels.run(task.response_id, self.inference.chat(
                self.inference.config.for_role("research"),
                core.summary_messages(task.question, hits),
                max_tokens=self.settings.research_max_tokens,
                temperature=0.0,
                timeout_s=task.remaining_seconds(),
            ))
        except InferenceError as exc:
            log.warning("summary failed, the digest stands in: %s", exc)
            return None, None, None, Usage()
        return done.content, done.model, done.server, done.usage

    async def _progress(self, task: ResearchTask, event: str, detail: str) -> None:
        await self.bus.publish(Progress(**task.child_fields(), stage="research", event=event, detail=detail,
                                        task_id=task.task_id), self.bus.topics.progress)


def create_app(
    settings: ResearchSettings | None = None,
    *,
    bus: Bus | None = None,
    inference: InferenceClient | None = None,
    redis: Redis | None = None,
    searxng: SearxngClient | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or ResearchSettings()
    bus = bus or Bus(settings)
    inference = inference or InferenceClient(InferenceConfig.from_settings(settings))
    redis = redis or redis_client(settings.redis_url)
    searxng = searxng or SearxngClient(settings.searxng_url, settings.searxng_timeout_s, settings.searxng_language)
    researcher = Researcher(settings, bus, inference, redis, searxng)
    bus.subscribe(bus.topics.tasks_research, ResearchTask, researcher.handle)
    cancel_feed = researcher.cancels.subscribe(bus)

    async def start() -> None:
        await wait_positioned(cancel_feed)  # a Cancel published from now on reaches this process

    async def close() -> None:
        await inference.aclose()
        await searxng.aclose()
        await redis.aclose()

    app = create_service_app(settings, bus, checks={"redis": lambda: redis_ready(redis)}, on_startup=[start],
                             on_shutdown=[close],
                             manage_broker=manage_broker)
    app.state.researcher = researcher
    return app
