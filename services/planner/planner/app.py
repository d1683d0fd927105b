"""planner: requests -> plan + expert tasks."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from redis.asyncio import Redis

from moe_core.bus import Bus
from moe_core.contracts import (
    EXPERT_CATEGORIES,
    ChatMessage,
    ChatRequest,
    Envelope,
    ExpertTask,
    GraphTask,
    Plan,
    PlannedTask,
    Progress,
    ResearchTask,
    ToolTask,
    Usage,
)
from moe_core.idempotency import Memo
from moe_core.inference import InferenceClient, InferenceConfig, InferenceError
from moe_core.service import create_service_app
from moe_core.stores import redis_client, redis_ready
from planner import core
from planner.augment import augment
from planner.settings import PlannerSettings

log = logging.getLogger(__name__)
HISTORY_TURNS = 6


class Planner:
    def __init__(self, settings: PlannerSettings, bus: Bus, inference: InferenceClient, redis: Redis) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.memo = Memo(redis, "planner:plan", settings.plan_ttl_s)
        self.categories = list(EXPERT_CATEGORIES)

    async def handle(self, request: ChatRequest) -> None:
        stored = await self.memo.get(request.response_id)
        if stored:
            plan = Plan.model_validate_json(stored)
        else:
            plan = augment(await self._plan(request), request, self.settings)
            plan = Plan.model_validate_json(await self.memo.put_first(request.response_id, plan.model_dump_json()))
        await self.bus.publish(plan, self.bus.topics.plans)
        history = [m for m in request.messages[:-1] if m.role in ("user", "assistant")][-HISTORY_TURNS:]
        for task in plan.tasks:
            message = task_message(request, plan, task, history)
            await self.bus.publish(message, self.bus.topics.for_task_kind(task.kind))
        detail = ", ".join(t.category for t in plan.tasks)
        await self.bus.publish(
            Progress(**request.child_fields(), stage="planner", event="planned", detail=detail),
            self.bus.topics.progress,
        )

    async def _plan(self, request: ChatRequest) -> Plan:
        question = core.last_user_question(request.messages)
        max_tasks = self.settings.planner_max_tasks
        refs = self.inference.config.for_role("planner")
        base = {**request.child_fields(), "mode": request.mode, "question": question, "params": request.params}
        try:
            completion = await self.inference.chat(
                refs,
                core.planner_messages(question, self.categories, max_tasks),
                max_tokens=self.settings.planner_max_tokens,
                temperature=0.0,
                json_schema=core.plan_schema(self.categories, max_tasks),
                schema_name="plan",
                timeout_s=min(self.settings.planner_timeout_s, max(request.remaining_seconds(), 0.1)),
            )
        except InferenceError as exc:
            log.warning("planner model failed, using the fallback plan: %s", exc)
            return Plan(**base, tasks=core.fallback_plan(question), source="fallback")
        tasks = core.sanitise(completion.content, self.categories, max_tasks)
        usage: Usage = completion.usage
        if not tasks:
            log.info("planner output had no usable task, using the fallback plan")
            return Plan(**base, tasks=core.fallback_plan(question), source="fallback",
                        planner_model=completion.model, usage=usage)
        return Plan(**base, tasks=tasks, source="llm", planner_model=completion.model, usage=usage)


def task_message(request: ChatRequest, plan: Plan, task: PlannedTask, history: list[ChatMessage]) -> Envelope:
    """The message a planned task becomes on its kind's topic."""
    fields = {**request.child_fields(), "task_id": task.task_id, "question": plan.question}
    if task.kind == "tool":
        return ToolTask(**fields, tool=task.tool or task.category, args=task.args)
    if task.kind == "research":
        queries = task.args.get("queries") or [task.instruction]
        return ResearchTask(**fields, queries=[str(q) for q in queries])
    if task.kind == "graph":
        return GraphTask(**fields, metadata_filters=plan.metadata_filters)
    return ExpertTask(**fields, category=task.category, instruction=task.instruction, history=history,
                      params=request.params, mode=request.mode, few_shot=plan.few_shot, user=request.user,
                      tools=request.tools, tool_choice=request.tool_choice)


def create_app(
    settings: PlannerSettings | None = None,
    *,
    bus: Bus | None = None,
    inference: InferenceClient | None = None,
    redis: Redis | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or PlannerSettings()
    bus = bus or Bus(settings)
    inference = inference or InferenceClient(InferenceConfig.from_settings(settings))
    redis = redis or redis_client(settings.redis_url)
    planner = Planner(settings, bus, inference, redis)
    bus.subscribe(bus.topics.requests, ChatRequest, planner.handle)

    async def close() -> None:
        await inference.aclose()
        await redis.aclose()

    app = create_service_app(
        settings, bus, checks={"redis": lambda: redis_ready(redis)}, on_shutdown=[close], manage_broker=manage_broker
    )
    app.state.planner = planner
    return app
