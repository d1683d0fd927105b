"""From a Stage declaration to a running app: resources, domain object, subscribers, lifespan, /alive,
/ready, /metrics and /asyncapi (FastStream's AsyncAPI document of this stage)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from moe_core.runtime.bus import Bus, wait_caught_up, wait_positioned
from moe_core.runtime.service import Check, create_service_app
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import Handler, stage_router
from moe_core.stage.resources import Resources, close_resources, make_resources

if TYPE_CHECKING:
    from moe_core.stage.declaration import ServiceDeclaration
    from moe_core.stage.spec import Stage

log = logging.getLogger(__name__)
ASYNCAPI_VERSION = "3.0.0"


def build_app(stage: Stage, settings: FleetSettings, *, bus: Bus | None = None, redis: Any = None,
              inference: Any = None, db: Any = None, manage_broker: bool = True, **extra: Any) -> FastAPI:
    res = make_resources(stage, settings, bus, redis, inference, db, extra)
    target = stage.build(res)
    handlers = _handlers(stage, target, res)
    router, subscribers = stage_router(stage, settings, res.bus, handlers)
    res.bus.broker.include_router(router)
    cancel_feed = subscribers.get("<cancel>")
    rebuilt = [subscribers[c.handler] for c in stage.all_consumed() if c.from_start and c.handler in subscribers]
    background: list[asyncio.Task[None]] = []

    async def start() -> None:
        if cancel_feed is not None:
            await wait_positioned(cancel_feed)  # a Cancel published from now on reaches this process
        for subscriber in rebuilt:  # a state rebuilt from a compacted topic is complete before the stage starts
            await wait_caught_up(subscriber)
        if stage.heartbeat and res.inference_client is not None and res.inference_client.fleet is not None:
            background.append(asyncio.create_task(res.inference_client.run_heartbeat(), name="inference-heartbeat"))
        if hasattr(target, "start"):
            await target.start()
        for work in getattr(target, "background", list)():
            background.append(asyncio.create_task(work(), name=f"{stage.name}-{work.__name__}"))

    async def close() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if hasattr(target, "close"):
            await target.close()
        await close_resources(res)

    app = create_service_app(settings, res.bus, checks=_checks(res, target), on_startup=[start],
                             on_shutdown=[close], manage_broker=manage_broker)
    document = AsyncAPI(res.bus.broker, title=stage.name, description=stage.summary,
                        schema_version=ASYNCAPI_VERSION)

    @app.get("/asyncapi", include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        """FastStream's AsyncAPI document of this process: what it consumes and may publish."""
        return JSONResponse(document.to_specification().to_jsonable())

    if hasattr(target, "mount"):
        target.mount(app)
    setattr(app.state, stage.state_name, target)
    app.state.stage = stage
    return app


def _handlers(stage: Stage, target: Any, res: Resources) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for consumes in stage.consumes:
        if consumes.when is None or consumes.when(target):
            handler = getattr(target, consumes.handler)
            handlers[consumes.handler] = _live(res, handler) if consumes.models else handler
    if stage.cancel is not None and res.cancels is not None:
        cancels = res.cancels
        then = getattr(target, stage.cancel.handler) if stage.cancel.handler else None
        handlers["<cancel>"] = _on_cancel(cancels.cancel, then)
    return handlers


def _live(res: Resources, handler: Handler) -> Handler:
    """A stage that calls models handles each message with the fleet configuration in force: the console's
    latest change (moe_core.llm.inference.live), read before the handler runs."""
    client = res.inference_client
    if getattr(client, "live", None) is None:  # (a test's own client may have none)
        return handler

    async def handle(message: Any) -> None:
        await client.refresh()  # type: ignore[union-attr]
        await handler(message)

    return handle


def _on_cancel(mark: Callable[[str], Awaitable[None]], then: Handler | None) -> Handler:
    async def on_cancel(message: Any) -> None:
        await mark(message.response_id)
        if then is not None:
            await then(message)

    return on_cancel


def _checks(res: Resources, target: Any) -> dict[str, Check]:
    from moe_core.runtime.stores import redis_ready

    checks: dict[str, Check] = {}
    if res.redis_client is not None:
        redis = res.redis_client
        checks["redis"] = lambda: redis_ready(redis)
    if res.graph_db is not None:
        checks["neo4j"] = res.breakers["neo4j"].ready if "neo4j" in res.breakers else res.graph_db.ping
    if hasattr(target, "checks"):
        checks.update(target.checks())
    return checks


def fleet_document(stages: Sequence[Stage | ServiceDeclaration], namespace: str = "moe") -> dict[str, Any]:
    """FastStream's AsyncAPI document of every declared stage and service, from the declarations alone:
    nothing is connected or built (docs/asyncapi.json, `make schemas`)."""
    broker = KafkaBroker("kafka:9092", client_id="moe-fleet")
    for stage in stages:
        settings = stage.settings.model_construct(topic_namespace=namespace)
        broker.include_router(stage_router(stage, settings, None, None)[0])
    spec = AsyncAPI(broker, title="MoE Sovereign Fleet", schema_version=ASYNCAPI_VERSION,
                    description="Every service's topics, generated from the stage and service declarations "
                                "(moe_core.stage.registry).")
    return spec.to_specification().to_jsonable()


def create_stage_app(stage: Stage, settings: FleetSettings | None = None, **overrides: Any) -> FastAPI:
    """The stage's ASGI app. Overrides (tests): bus, redis, inference, db, manage_broker, and any keyword the
    stage's build reads from `resources.extra`."""
    return build_app(stage, settings or stage.settings(), **overrides)
