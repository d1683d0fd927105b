"""mcp: precision tools served three ways from one registry — Kafka (tool tasks -> results), REST
(GET /tools, POST /invoke) and an MCP server (streamable HTTP at /mcp)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis

from mcp_service import core
from mcp_service.auth import KeyAuth
from mcp_service.mcp_server import mcp_routes
from mcp_service.registry import Registry
from mcp_service.rest import add_health_route, add_rest_routes
from mcp_service.runner import WorkerPool
from mcp_service.settings import McpSettings
from moe_core.access.auth import KeyVerifier
from moe_core.access.limits import Limiter
from moe_core.access.throttle import Throttle
from moe_core.contracts import Progress, TaskResult, ToolTask
from moe_core.contracts.tools import select_tools
from moe_core.llm.tool_switches import DisabledTools, publish_catalog
from moe_core.policy.egress import tool_refused_record
from moe_core.runtime.bus import Bus
from moe_core.runtime.service import Check
from moe_core.stage.resources import Outcomes, Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, MemoPolicy, Notes, Stage

log = logging.getLogger(__name__)


class ToolWorker:
    """The Kafka front door: one ToolTask in, one TaskResult out (remembered, so redelivery agrees)."""

    def __init__(self, settings: McpSettings, bus: Bus, registry: Registry, pool: WorkerPool,
                 outcomes: Outcomes[TaskResult], redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.bus = bus
        self.registry = registry
        self.pool = pool
        self.outcomes = outcomes
        self.mcp_routes, self._start_mcp, self._stop_mcp = mcp_routes(registry, settings)
        self.verifier = KeyVerifier(settings.postgres_dsn, service_key=settings.mcp_service_key.get_secret_value(),
                                    cache_ttl_s=settings.auth_cache_ttl_s)

    async def handle(self, task: ToolTask) -> None:
        result, _ = await self.outcomes.once(f"{task.response_id}:{task.task_id}", lambda: self._run(task),
                                             message=task, expired=lambda: core.expired_result(task))
        if core.refused(result):  # the request's egress decision did not permit the tool: recorded, not run
            await self.bus.publish(tool_refused_record(task, core.refused_tool(task) or task.tool),
                                   self.bus.topics.audit)
        await self.bus.publish(result, self.bus.topics.results)
        await self.bus.publish(
            Progress(**task.child_fields(), stage="mcp",
                     event="failed" if result.error or (result.data or {}).get("error") else "answered",
                     detail=task.tool, task_id=task.task_id),
            self.bus.topics.progress,
        )

    async def _run(self, task: ToolTask) -> TaskResult:
        denied = core.refused_tool(task)  # its class may not use the tool (or a chain's step)
        if denied is not None:
            log.info("tool %s refused: the request's egress decision does not permit it", denied)
            return core.forbidden_result(task, denied)
        outcome = await self.registry.ainvoke(task.tool, task.args, timeout_s=task.remaining_seconds(), via="kafka")
        if not outcome.ok:
            log.info("tool %s failed: %s: %s", task.tool, outcome.code, outcome.message)
        return core.task_result(task, outcome)

    async def start(self) -> None:
        self.pool.start_in_background()  # the forkserver preloads SymPy and pint (seconds); /ready waits for it
        await publish_catalog(self.redis, self.settings.topic_namespace, self.registry.specs.values())  # the console's
        await self._start_mcp()

    async def close(self) -> None:
        await self._stop_mcp()
        await self.verifier.close()
        self.registry.close()

    def checks(self) -> dict[str, Check]:
        return {"tools": self._tools_ready}

    async def _tools_ready(self) -> None:
        if not self.pool.ready:
            raise RuntimeError("the tool workers are not running")

    def mount(self, app: FastAPI) -> None:
        app.router.routes.extend(self.mcp_routes)
        throttle = Throttle(Limiter(self.redis, self.settings.topic_namespace), self.settings)  # a key's calls a minute
        app.add_middleware(KeyAuth, verifier=self.verifier, throttle=throttle)  # /invoke and /mcp need a key
        add_rest_routes(app, self.registry)
        add_health_route(app, self.registry, lambda: self.pool.ready)
        app.state.registry = self.registry


def build(res: Resources) -> ToolWorker:
    settings: McpSettings = res.settings
    pool = WorkerPool(settings.tool_workers, settings.tool_memory_mb, settings.tool_max_result_bytes)
    switches = DisabledTools(res.redis, settings.topic_namespace, settings.tool_switch_ttl_s)  # the operator's
    registry = Registry(select_tools(settings.tools_enabled, settings.tools_disabled), pool, settings.tool_timeout_s,
                        switches)
    return ToolWorker(settings, res.bus, registry, pool, res.outcomes(), res.redis)


STAGE = Stage(
    name="mcp",
    settings=McpSettings,
    build=build,
    summary="Precision tools from one registry: tool tasks -> results (also REST and an MCP server).",
    consumes=(Consumes("tasks_mcp", ToolTask, "handle", per_task=True),),
    publishes=("results", "progress", "audit"),
    needs=("redis",),
    memo=MemoPolicy("mcp:result", TaskResult, ttl="result_ttl_s"),
    state="worker",
    notes=Notes(keeps="Redis `mcp:result:<response_id>:<task_id>` (result memo); tools run in "
                    "killable worker processes",
                dedupe="`Memo` keyed by `response_id:task_id`",
                redelivery="republishes the stored result without running the tool again"),
)


def create_app(settings: McpSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, redis, manage_broker."""
    return create_stage_app(STAGE, settings, **overrides)
