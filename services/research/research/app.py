"""research: research tasks -> web results (SearXNG), numbered sources and a cited summary."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI

from moe_core.contracts import Progress, ResearchTask, TaskResult, Usage
from moe_core.llm.inference import InferenceClient, InferenceError
from moe_core.policy.egress import may_research
from moe_core.runtime.bus import Bus
from moe_core.stage.resources import Outcomes, Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import CancelPolicy, Consumes, MemoPolicy, Notes, Stage
from research import core
from research.searxng import SearchError, SearxngClient, WebHit
from research.settings import ResearchSettings

log = logging.getLogger(__name__)


class Researcher:
    def __init__(self, settings: ResearchSettings, bus: Bus, inference: InferenceClient, searxng: SearxngClient,
                 outcomes: Outcomes[TaskResult]) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.searxng = searxng
        self.outcomes = outcomes

    async def handle(self, task: ResearchTask) -> None:
        async def research() -> TaskResult:
            queries = core.queries_for(task, self.settings.research_max_queries)
            await self._progress(task, "researching", "; ".join(queries))
            return await self._run(task, queries)

        result, _ = await self.outcomes.once(  # a Cancel stops the search and the summary
            f"{task.response_id}:{task.task_id}", research, message=task,
            cancelled=lambda: self._failed(task, "cancelled"),
            expired=lambda: self._failed(task, "deadline passed before the task started"))
        await self.bus.publish(result, self.bus.topics.results)
        detail = result.error or f"{len(result.sources)} sources"
        await self._progress(task, "failed" if result.error else "researched", detail)

    async def _run(self, task: ResearchTask, queries: list[str]) -> TaskResult:
        started = time.perf_counter()
        base = {**task.child_fields(), "task_id": task.task_id, "kind": "research", "category": task.category}
        if not may_research(task.egress):  # its class may not leave the fleet
            return TaskResult(**base, confidence="low", error="web research is not allowed for this request's data "
                              f"class ({task.data_class}): nothing was searched (policy/opa/egress.rego)")
        try:
            hits = await self.searxng.search_all(queries, task.max_results, timeout_s=task.remaining_seconds())
            summary, model, server, usage = await self._summarise(task, hits)
        except SearchError as exc:
            log.warning("web search failed: %s", exc)
            return TaskResult(**base, confidence="low", error=f"web search failed: {exc}",
                              duration_ms=(time.perf_counter() - started) * 1000)
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
            done = await self.inference.chat(
                self.inference.config.for_role("research"),
                core.summary_messages(task.question, hits),
                max_tokens=self.settings.research_max_tokens,
                temperature=0.0,
                timeout_s=task.remaining_seconds(),
            )
        except InferenceError as exc:
            log.warning("summary failed, the digest stands in: %s", exc)
            return None, None, None, Usage()
        return done.content, done.model, done.server, done.usage

    @staticmethod
    def _failed(task: ResearchTask, error: str) -> TaskResult:
        return TaskResult(**task.child_fields(), task_id=task.task_id, kind="research", category=task.category,
                          confidence="low", error=error)

    async def close(self) -> None:
        await self.searxng.aclose()

    async def _progress(self, task: ResearchTask, event: str, detail: str) -> None:
        await self.bus.publish(Progress(**task.child_fields(), stage="research", event=event, detail=detail,
                                        task_id=task.task_id), self.bus.topics.progress)


def build(res: Resources) -> Researcher:
    settings: ResearchSettings = res.settings
    searxng = res.extra.get("searxng") or SearxngClient(settings.searxng_url, settings.searxng_timeout_s,
                                                        settings.searxng_language)
    return Researcher(settings, res.bus, res.inference, searxng, res.outcomes())


STAGE = Stage(
    name="research",
    settings=ResearchSettings,
    build=build,
    summary="Research tasks -> web results (SearXNG), numbered sources and a cited summary.",
    consumes=(Consumes("tasks_research", ResearchTask, "handle", per_task=True),),
    publishes=("results", "progress"),
    needs=("redis", "inference"),
    memo=MemoPolicy("research:result", TaskResult, ttl="result_ttl_s"),
    cancel=CancelPolicy(),
    state="researcher",
    notes=Notes(keeps="Redis `research:result:<response_id>:<task_id>` (result memo); SearXNG "
                    "(`MOE_SEARXNG_URL`)",
                dedupe="`Memo` keyed by `response_id:task_id`",
                redelivery="republishes the stored result without searching again"),
)


def create_app(settings: ResearchSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, inference, redis, searxng, manage_broker."""
    return create_stage_app(STAGE, settings, **overrides)
