"""Every answered request's record is complete, as the operator's `replay verify` sees it: codex-lineage stored every
Kafka record the request left on the topics (none "not recorded yet", none missing), the signatures, the chain, the
checkpoints and the timestamps verify, and the record holds the request once and one answer. The response ids are
verified in the test's process, in the fleet's environment (the operator's `replay verify` is imported once per
worker, not once per case: a process of its own cost each case ~13 s, 9 of them imports), at the same time (up to
PARALLEL calls at once), each until it verifies or the time is up.

    assert_complete(lineage_fleet, rids)
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

import asyncpg

if TYPE_CHECKING:
    from tests.lineage.conftest import LineageFleet

ONCE = ("ChatRequest", "Answer")  # message types a request's record holds exactly once
PARALLEL = 4  # `replay verify` calls at a time (each reads the topics and the store)


def assert_complete(fleet: LineageFleet, rids: list[str], timeout_s: float = 120,
                    once: tuple[str, ...] = ONCE, times: int = 1) -> None:
    """Each request of `rids` recorded completely and verified; the message types `once` (its request and its
    answer) recorded exactly `times` times (2: every record was delivered again as a new Kafka record)."""
    if not rids:
        return
    started = time.monotonic()
    with _LOCK, fleet_environment(fleet.env):
        code, out = asyncio.run(_main(timeout_s, rids))
    assert code == 0, f"records not complete:\n{out}"
    counts = asyncio.run(_counts(fleet.owner_dsn, fleet.schema, rids))
    other = {(rid, kind): n for (rid, kind), n in counts.items() if n != times and kind in once}
    assert not other, f"recorded other than {times} times (response id, message type): count {other}"
    print(f"record check: {len(rids)} requests complete and verified in {time.monotonic() - started:.1f} s\n"
          + "\n".join(line for line in out.splitlines() if line.startswith("COMPLETE")))


_LOCK = threading.Lock()  # one check at a time in a process: the environment is the process's


@contextmanager
def fleet_environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ with the fleet's variables while `replay verify` runs (its settings and its Kafka clients read
    them, as in the operator's shell), then as it was."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def _counts(dsn: str, schema: str, rids: list[str]) -> dict[tuple[str, str], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f'SELECT response_id, message_type, count(*) AS n FROM "{schema}".audit_log '
                                "WHERE response_id = ANY($1::text[]) AND kind='record' "
                                "AND message_type = ANY($2::text[]) GROUP BY response_id, message_type",
                                rids, list(ONCE))
    finally:
        await conn.close()
    counts = {(rid, kind): 0 for rid in rids for kind in ONCE}
    counts.update({(r["response_id"], r["message_type"]): r["n"] for r in rows})
    return counts


_OUT: contextvars.ContextVar[io.StringIO] = contextvars.ContextVar("record_check_out")


class _TaskOut(io.TextIOBase):
    """sys.stdout and sys.stderr while the ids are checked at once: what a `replay verify` prints goes to its own
    task's buffer (contextlib.redirect_stdout is one global for every task, and would mix their outputs)."""

    def __init__(self, real: TextIO) -> None:
        self.real = real

    def write(self, text: str) -> int:
        return (_OUT.get(None) or self.real).write(text)


async def _verified(rid: str) -> tuple[bool, str]:
    from codex_lineage.replay import main

    out = io.StringIO()
    token = _OUT.set(out)
    try:
        code = await main(["verify", rid])
    finally:
        _OUT.reset(token)
    text = out.getvalue()
    return code == 0 and "not recorded yet" not in text, text


async def _check(rid: str, end: float, calls: asyncio.Semaphore) -> tuple[bool, str]:
    """(verified, what to print) of one response id, verified again each second until it is or `end` passes."""
    began, tries, took = time.monotonic(), 0, []
    while True:
        tries += 1
        async with calls:
            call = time.monotonic()
            ok, text = await _verified(rid)
            took.append(time.monotonic() - call)
        if ok or time.monotonic() > end:
            break
        await asyncio.sleep(1)
    spent = f"{time.monotonic() - began:.1f} s, {tries} calls of {min(took):.2f}-{max(took):.2f} s"
    return ok, f"{'COMPLETE' if ok else 'INCOMPLETE'} {rid} in {spent}\n{text if not ok else text.splitlines()[-1]}"


async def _main(timeout_s: float, rids: list[str]) -> tuple[int, str]:
    """(0 when every id verified, what to print): every response id checked at once (each its own `replay verify`,
    as the operator runs it), so that a case waits for its slowest request's record, not for the sum of them; a
    call that hangs past the time and two minutes more is a failure with what the others printed."""
    end, calls = time.monotonic() + timeout_s, asyncio.Semaphore(PARALLEL)
    real, real_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _TaskOut(real)
    tasks = [asyncio.ensure_future(_check(rid, end, calls)) for rid in rids]  # a task (a context) each
    try:
        await asyncio.wait(tasks, timeout=timeout_s + 120)
    finally:
        sys.stdout, sys.stderr = real, real_err
        for task in tasks:
            task.cancel()
    results = [task.result() if task.done() and not task.cancelled() and task.exception() is None
               else (False, f"INCOMPLETE {rid}: {_unfinished(task)}") for rid, task in zip(rids, tasks, strict=True)]
    return (0 if all(ok for ok, _ in results) else 1), "\n".join(line for _, line in results)


def _unfinished(task: asyncio.Task[tuple[bool, str]]) -> str:
    if not task.done() or task.cancelled():
        return "replay verify did not return in time"
    return f"replay verify raised {task.exception()!r}"
