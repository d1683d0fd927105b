"""mcp: precision tools served three ways from one registry — Kafka (tool tasks -> results), REST
(GET /tools, POST /invoke) and an MCP server (streamable HTTP at /mcp)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from redis.asyncio import Redis

from mcp_service import core
from mcp_service.mcp_server import mcp_routes
from mcp_service.registry import Registry
from mcp_service.rest import add_rest_routes
from mcp_service.runner import WorkerPool
from mcp_service.settings import McpSettings
from moe_core.bus import Bus
from moe_core.contracts import Progress, TaskResult, ToolTask
from moe_core.contracts.tools import select_tools
from moe_core.idempotency import Memo
from moe_core.service import create_service_app
from moe_core.stores import redis_client, redis_ready

log = logging.getLogger(__name__)


class ToolWorker:
    """The Kafka front door: one ToolTask in, one TaskResult out (remembered, so redelivery agrees)."""

    def __init__(self, settings: McpSettings, bus: Bus, registry: Registry, redis: Redis) -> None:
        self.bus = bus
        self.registry = registry
        self.memo = Memo(redis, "mcp:result", settings.result_ttl_s)

    async def handle(self, task: ToolTask) -> None:
        key = f"{task.response_id}:{task.task_id}"
        stored = await self.memo.get(key)
        if stored:
            result = TaskResult.model_validate_json(stored)
        else:
            result = await self._run(task)
            result = TaskResult.model_validate_json(await self.memo.put_first(key, result.model_dump_json()))
        await self.bus.publish(result, self.bus.topics.results)
        await self.bus.publish(
            Progress(**task.child_fields(), stage="mcp",
                     event="failed" if result.error or (result.data or {}).get("error") else "answered",
                     detail=task.tool, task_id=task.task_id),
            self.bus.topics.progress,
        )

    async def _run(self, task: ToolTask) -> TaskResult:
        if task.expired():
            return core.expired_result(task)
        outcome = await self.registry.ainvoke(task.tool, task.args, timeout_s=task.remaining_seconds(), via="kafka")
        if not outcome.ok:
            log.info("tool %s failed: %s: %s", task.tool, outcome.code, outcome.message)
        return core.task_result(task, outcome)


def create_app(
    settings: McpSettings | None = None,
    *,
    bus: Bus | None = None,
    redis: Redis | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or McpSettings()
    bus = bus or Bus(settings)
    redis = redis or redis_client(settings.redis_url)
    pool = WorkerPool(settings.tool_workers, settings.tool_memory_mb, settings.tool_max_result_bytes)
    registry = Registry(select_tools(settings.tools_enabled, settings.tools_disabled), pool, settings.tool_timeout_s)
    worker = ToolWorker(settings, bus, registry, redis)
    bus.subscribe(bus.topics.tasks_mcp, ToolTask, worker.handle)

    routes, start_mcp, stop_mcp = mcp_routes(registry, settings)

    async def start() -> None:
        pool.start_in_background()  # the forkserver preloads SymPy and pint (seconds); /ready waits for it
        await start_mcp()

    async def close() -> None:
        await stop_mcp()
        registry.close()
        await redis.aclose()

    async def tools_ready() -> None:
        if not pool.ready:
            raise RuntimeError("the tool workers are not running")

    app = create_service_app(settings, bus, checks={"redis": lambda: redis_ready(redis), "tools": tools_ready},
                             on_startup=[start], on_shutdown=[close], manage_broker=manage_broker)
    app.router.routes.extend(routes)
    add_rest_routes(app, registry)
    app.state.registry = registry
    app.state.worker = worker
    return app
