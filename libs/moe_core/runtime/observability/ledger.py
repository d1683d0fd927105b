"""The overhead ledger: what each stage run cost the fleet, beside the model calls it waited for.

A stage run (one consumed message, moe_core.runtime.run_clock) keeps a `RunLedger`: its start, the CPU its own steps
used
on the event loop (the handler and what it awaits directly, measured around each step of its coroutine: `metered`)
and in the threads it hands work to (`to_thread`), and the wall-clock spans of its model calls (the inference
client notes each, `model_call`). Every message the run publishes carries the run's `StageCost` so far
(`Envelope.cost`, stamped by the bus like the versions), so codex-lineage's record holds each stage's handler time,
model time and CPU per request.

The edge adds them up into one figure per request (`overhead_ms`): its own wall time from the request's arrival to
the reply, minus the model time on the request's critical path (`critical_model_ms`: the stages that run one after
the other add up, the tasks of one plan run side by side and count with the longest). What is left is the fleet's
own time: parsing, planning, Kafka hops, queues, stores, merging, rendering — the "gateway tax".

The tasks a run starts are its work too (asyncio.gather's children, create_task, ensure_future, a TaskGroup's,
wait_for's and `Cancellations.run`'s: the planner's planning itself): a task factory (`charge_tasks`, installed on
the loop by the first `metered` run) gives a task created inside a run (its context holds the run's `RUN_LEDGER`) a
coroutine whose steps are metered like the handler's, into the same ledger. A step is counted once: a task's step
that starts inside another step of its run (an eager task's first step) is left to the step around it. A task that
outlives its run (a write-behind, a sweeper, a timer started in it) is charged only until the run's handler returns
(`RunLedger.ended`): later work is nobody's run. Tasks created outside a run are not wrapped. A charged step costs
~2.5 us more than a plain one (two `thread_time` calls and a Python-level send; bench.ledger_costs; a full plan's run
has ~20).

Not counted as a run's CPU: work in threads other than through `to_thread`, and the broker client's own tasks
(aiokafka's sender and fetcher, started outside any run). A streamed model call counts as model time from the
request to its last piece, the caller's work between the pieces (publishing deltas) included.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from moe_core.contracts.envelope import StageCost
from moe_core.contracts.messages import TaskResult

T = TypeVar("T")


@dataclass
class RunLedger:
    started: float = field(default_factory=time.perf_counter)
    cpu_s: float = 0.0  # finished steps on the event loop
    thread_cpu_s: list[float] = field(default_factory=list)  # appended from worker threads (list.append is atomic)
    step_started: float | None = None  # thread_time() when the current step began (a publish happens mid-step)
    model_spans: list[tuple[float, float]] = field(default_factory=list)
    ended: bool = False  # the handler returned: the tasks it left running are no longer charged to it

    def cost(self, stage: str, task_id: str | None = None) -> StageCost:
        now = time.perf_counter()
        running = time.thread_time() - self.step_started if self.step_started is not None else 0.0
        cpu = self.cpu_s + running + sum(self.thread_cpu_s)
        return StageCost(stage=stage, task_id=task_id, handler_ms=round((now - self.started) * 1000, 3),
                         model_ms=round(union_s(self.model_spans) * 1000, 3), cpu_ms=round(cpu * 1000, 3),
                         model_calls=len(self.model_spans))


RUN_LEDGER: ContextVar[RunLedger | None] = ContextVar("moe_run_ledger", default=None)


def union_s(spans: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by at least one span (model calls of one run may overlap)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def model_call(started: float) -> None:
    """The inference client: a model call of the current run ran from `started` (perf_counter) until now."""
    ledger = RUN_LEDGER.get()
    if ledger is not None:
        ledger.model_spans.append((started, time.perf_counter()))


def stage_cost(stage: str, task_id: str | None = None) -> StageCost | None:
    """The current run's cost so far (None outside a stage run)."""
    ledger = RUN_LEDGER.get()
    return ledger.cost(stage, task_id) if ledger is not None else None


def cost_of(stage: str, message: Any) -> StageCost | None:
    """The current run's cost so far, for a message it publishes or stores: a task's run (its result) runs beside
    the plan's other tasks, so a result names its task; everything else (a plan's tasks are the planner's run) is a
    request-level run."""
    return stage_cost(stage, message.task_id if isinstance(message, TaskResult) else None)


class _Metered:
    """Awaits `coro`, adding the CPU of each of its steps (thread_time around send/throw) to `ledger`."""

    def __init__(self, coro: Awaitable[T], ledger: RunLedger) -> None:
        self.coro, self.ledger = coro, ledger

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self.coro.__await__()
        ledger, send, error = self.ledger, None, None
        while True:
            ledger.step_started = time.thread_time()
            try:
                yielded = inner.send(send) if error is None else inner.throw(error)
            except StopIteration as stop:
                ledger.ended = True
                return stop.value
            except BaseException:
                ledger.ended = True
                raise
            finally:
                ledger.cpu_s += time.thread_time() - ledger.step_started
                ledger.step_started = None
            try:
                send, error = (yield yielded), None
            except BaseException as exc:  # a cancellation or a thrown error goes on to the awaited coroutine
                send, error = None, exc


def metered(coro: Awaitable[T], ledger: RunLedger) -> Awaitable[T]:
    """`coro` (a run's handler) awaited with the CPU of its steps, and of the tasks it starts, in `ledger`."""
    charge_tasks(asyncio.get_running_loop())
    return _Metered(coro, ledger)


class _Charged(Coroutine[Any, Any, Any]):
    """A task's coroutine whose steps (send/throw) are charged to the run that created the task."""

    __slots__ = ("coro", "ledger")

    def __init__(self, coro: Coroutine[Any, Any, Any], ledger: RunLedger) -> None:
        self.coro, self.ledger = coro, ledger

    def send(self, value: Any) -> Any:
        return self._step(self.coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        args = (typ,) if val is None and tb is None else (typ, val, tb)
        return self._step(self.coro.throw, *args)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.coro.__await__()

    def __getattr__(self, name: str) -> Any:  # cr_frame, cr_code, __qualname__: the task's repr and stack
        if name in self.__slots__:
            raise AttributeError(name)
        return getattr(self.coro, name)

    def _step(self, step: Callable[..., Any], *args: Any) -> Any:
        ledger = self.ledger
        if ledger.ended or ledger.step_started is not None:  # run over, or inside a step of the run already metered
            return step(*args)
        ledger.step_started = started = time.thread_time()
        try:
            return step(*args)
        finally:
            ledger.cpu_s += time.thread_time() - started
            ledger.step_started = None


def _charging(previous: Any, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
    context = kwargs.get("context")
    run = context.get(RUN_LEDGER) if context is not None else RUN_LEDGER.get()
    if run is not None and not run.ended and asyncio.iscoroutine(coro):
        coro = _Charged(coro, run)
    if previous is not None:
        return previous(loop, coro, **kwargs)
    return asyncio.Task(coro, loop=loop, **kwargs)


def charge_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Install the task factory that charges a task created inside a run to that run (once per loop; a factory
    already there, e.g. an eager one, still makes the task)."""
    current = loop.get_task_factory()
    if getattr(current, "func", None) is not _charging:
        loop.set_task_factory(functools.partial(_charging, current))


async def to_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """asyncio.to_thread, the thread's CPU added to the current run's ledger."""
    ledger = RUN_LEDGER.get()
    if ledger is None:
        return await asyncio.to_thread(func, *args, **kwargs)

    def timed() -> T:
        started = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            ledger.thread_cpu_s.append(time.thread_time() - started)

    return await asyncio.to_thread(functools.partial(timed))


def with_upstream(answer: Any, upstream: StageCost | None) -> Any:
    """An Answer handed on by a later stage (critic, guardrail), with the run that handed it over (the Draft's
    cost) on its ledger."""
    if upstream is None or upstream in answer.ledger:
        return answer
    return answer.model_copy(update={"ledger": [*answer.ledger, upstream]})


def critical_model_ms(costs: Iterable[StageCost | None]) -> float:
    """The model time on a request's critical path: runs without a task one after the other (planner, merger,
    critic), the tasks of the plan side by side (the longest counts)."""
    serial, tasks = 0.0, 0.0
    for cost in costs:
        if cost is None:
            continue
        if cost.task_id is None:
            serial += cost.model_ms
        else:
            tasks = max(tasks, cost.model_ms)
    return serial + tasks


def overhead_ms(wall_s: float, costs: Iterable[StageCost | None]) -> float:
    """The fleet's own time of a request: its wall time at the edge minus the model time on its critical path."""
    return round(max(wall_s * 1000 - critical_model_ms(costs), 0.0), 1)
