"""The skeleton every service shares: an ASGI app with /alive, /ready and /metrics whose lifespan starts
the bus (topics, broker, subscribers) and the service's own resources. Stages get it through the stage
runtime (moe_core.stage.runtime), which adds their subscribers, checks and /asyncapi; the gateway and
codex-lineage call it directly."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from moe_core.runtime import key_ordered
from moe_core.runtime.blas import limit_blas_threads
from moe_core.runtime.bus import AUTHORIZATION_ERRORS, TRANSIENT_ERRORS, Bus
from moe_core.runtime.memory_trim import Trimming
from moe_core.runtime.observability import configure_logging, metrics_response
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)
# After MOE_SHUTDOWN_GRACE_S: a consumer's own stop (its offsets flushed, the group left), then the broker client's.
# Each takes well under a second on a healthy broker; twice the grace and these stay within fleetctl's 15 s kill.
STOP_MARGIN_S = 1.5
Hook = Callable[[], Awaitable[None]]
Check = Callable[[], Awaitable[None]]


def create_service_app(
    settings: FleetSettings,
    bus: Bus,
    *,
    checks: dict[str, Check] | None = None,
    on_startup: list[Hook] | None = None,
    on_shutdown: list[Hook] | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    """manage_broker=False lets tests drive the broker themselves (FastStream's TestKafkaBroker)."""
    checks = dict(checks or {})

    async def broker_ready() -> None:
        if not await bus.ping(2.0):
            raise RuntimeError("Kafka broker not reachable")

    checks = {"kafka": broker_ready, **checks}
    trim = Trimming(settings.malloc_trim_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        limit_blas_threads(settings.blas_threads)  # numpy's products on the calling thread (moe_core.runtime.blas)
        try:  # a start that fails half-way still closes what it opened (a background loop left running otherwise)
            if manage_broker:
                await started(bus.ensure_topics, settings.startup_retry_s, "topics")
                await bus.broker.start()
            for hook in on_startup or []:
                await started(hook, settings.startup_retry_s, getattr(hook, "__qualname__", "start-up"))
            await trim.start()
            log.info("%s started", settings.service_name)
            yield
        finally:
            if manage_broker:  # in-flight messages end (or stay uncommitted) before the hooks close the stores
                subscribers = list(bus.broker.subscribers)
                log.info("%s stopping: %d subscriber(s), up to %.1f s for the messages in flight",
                         settings.service_name, len(subscribers), settings.shutdown_grace_s)
                await _drain(subscribers, settings.shutdown_grace_s)
                await _cancel_in_flight(subscribers)
                await asyncio.gather(*(_stop(s, STOP_MARGIN_S) for s in subscribers))  # only now a consumer leaves
                log.info("%s: subscribers stopped", settings.service_name)  # a hang before it: a consumer's stop
            await _shut_down([trim.close, *(on_shutdown or [])])
            if manage_broker:
                log.info("%s: stores closed, stopping the broker", settings.service_name)
                await _bounded(bus.close(), STOP_MARGIN_S, "the broker client")
            log.info("%s stopped", settings.service_name)

    app = FastAPI(title=settings.service_name, lifespan=lifespan)
    add_health_routes(app, checks)
    return app


async def _shut_down(hooks: list[Hook]) -> None:
    """Every hook runs, in order, even when one before it fails: a store that cannot close must not leave the
    next one open or a background loop running (each failure is logged)."""
    for hook in hooks:
        try:
            await hook()
        except Exception:
            log.exception("shutdown step %s failed; the next ones still run", getattr(hook, "__qualname__", hook))


async def _drain(subscribers: list[Any], grace_s: float) -> None:
    """Every subscriber stops handling records, and the messages being handled get up to `grace_s` to end, all at
    once, while every consumer stays in its group. A consumer leaving first (an idle subscription of the same group,
    graph-ingest's feedback beside its ingest) rebalanced the group: the busy one's partitions were revoked, so its
    message, finished within the grace, was not committed but handled again by the next owner."""
    for subscriber in subscribers:
        subscriber.running = False  # FastStream's stop does this first: a record fetched from now on is not handled
    started = [s.lock for s in subscribers if hasattr(s.lock, "wait_release")]  # FastStream's MultiLock, once started
    await asyncio.gather(*(lock.wait_release(grace_s) for lock in started))


async def _stop(subscriber: Any, within_s: float) -> None:
    """The subscriber stopped, nothing in flight any more (_drain, _cancel_in_flight): its consumer flushes its
    offsets and leaves the group. That can hang on a broker that is rebalancing or gone (a commit retried, a
    LeaveGroup unanswered): after `within_s` it is given up, so the service still ends before its supervisor kills
    it; what it did not commit is redelivered to the next owner."""
    await _bounded(subscriber.stop(), within_s, "a subscriber")


async def _bounded(stopping: Awaitable[Any], within_s: float, what: str) -> None:
    try:
        async with asyncio.timeout(within_s):
            await stopping
    except TimeoutError:
        log.warning("%s did not stop within %.1f s (the broker rebalancing or unreachable); its uncommitted "
                    "messages are redelivered", what, within_s)
    except (Exception, asyncio.CancelledError) as exc:  # e.g. a fetch timing out on a slow broker
        if isinstance(exc, asyncio.CancelledError) and _cancelling():
            raise  # this shutdown itself is cancelled, not one of the subscriber's own tasks
        log.warning("%s did not stop cleanly (%s: %s); its uncommitted messages are redelivered",
                    what, type(exc).__name__, exc)


async def _cancel_in_flight(subscribers: list[Any]) -> None:
    """Messages still being handled after the grace (a model call that takes minutes) are cancelled before the
    consumers stop and the stores close: uncommitted, the next owner handles them again; a handler left running
    would fail on a closed store and dead-letter its message. Counted are those holding their subscriber's lock, not
    the records waiting behind one of them for their key (moe_core.runtime.key_ordered)."""
    handling = sum(getattr(s.lock, "qsize", 0) for s in subscribers)
    tasks = [t for s in subscribers for t in _cancel(s)]
    if handling:
        log.warning("%d message(s) still being handled after the shutdown grace were cancelled; they are "
                    "redelivered", handling)
    await asyncio.gather(*tasks, return_exceptions=True)


def _cancel(subscriber: Any) -> list[asyncio.Task[Any]]:
    """The subscriber's tasks still handling records, cancelled: KeyOrdered's, or, where FastStream handles them in
    its consume loops (MOE_CONSUMER_IN_FLIGHT=1, Bus.subscribe), those loops, which its stop would otherwise wait
    on for a second grace."""
    ordered = key_ordered.of(subscriber)
    if ordered is not None:
        return ordered.cancel()
    if getattr(subscriber.lock, "empty", True):
        return []
    tasks = [t for t in getattr(subscriber, "tasks", ()) if not t.done()]
    for task in tasks:
        task.cancel()
    return tasks


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def started(step: Hook, retry_s: float, what: str, first_delay_s: float = 0.5) -> None:
    """Run one start-up step; a transient failure (a store busy or electing, a deadlock under load) is retried
    with backoff for `retry_s` seconds, each retry a warning, before the service gives up (and exits). Steps
    are idempotent: topics, schemas and seeds are created only where missing."""
    end, delay = time.monotonic() + retry_s, first_delay_s
    while True:
        try:
            await step()
            return
        except AUTHORIZATION_ERRORS:  # not transient: a missing ACL stays missing
            raise
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() + delay > end:
                raise
            log.warning("start-up step %s failed transiently (%s: %s); retrying in %.1f s",
                        what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def add_health_routes(app: FastAPI, checks: dict[str, Check]) -> None:
    @app.get("/alive", include_in_schema=False)
    async def alive() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        failures: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=3.0)
            except Exception as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
        if failures:
            return JSONResponse({"status": "not ready", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready", "checks": sorted(checks)})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = metrics_response()
        return Response(body, media_type=content_type)


def exit_with(pid: int, poll_s: float = 1.0, grace_s: float = 35.0) -> threading.Thread:
    """Stop this process (SIGTERM, then a hard exit after `grace_s`) once process `pid` is gone: a test
    session that was killed leaves no service behind (MOE_EXIT_WITH_PID)."""
    def watch() -> None:
        while True:
            time.sleep(poll_s)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                continue  # alive, another user's
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def run(factory_path: str, settings: FleetSettings, workers: int = 1) -> None:
    """Serve `module:factory` with uvicorn (the factory builds the app from settings in each worker)."""
    import uvicorn

    if os.environ.get("MOE_EXIT_WITH_PID", "").isdigit():
        exit_with(int(os.environ["MOE_EXIT_WITH_PID"]))
    # What the imports made (modules, pydantic schemas, compiled grammars: the planner's ~160k objects) lives as long
    # as the process: frozen out of the collector's way, a full collection walks only what came later (issue 52: one
    # in the planner took ~146 ms of CPU before, ~53 after). The factory's module is imported first (uvicorn then
    # takes it from sys.modules); in the service process only, never in a test process that starts many apps, nor
    # in the supervisor of several workers (each worker imports the app itself: the parent would only hold a copy)
    if workers == 1:
        importlib.import_module(factory_path.partition(":")[0])
        gc.collect()
        gc.freeze()

    uvicorn.run(
        factory_path,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),  # open requests (streams), then messages
    )
