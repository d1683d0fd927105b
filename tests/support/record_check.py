"""Every answered request's record is complete, as the operator's `replay verify` sees it: codex-lineage stored every
Kafka record the request left on the topics (none "not recorded yet", none missing), the signatures, the chain, the
checkpoints and the timestamps verify, and the record holds the request once and one answer. All the response ids are
verified in one process (`python -m tests.support.record_check RID…` in the fleet's environment), at the same time
(up to PARALLEL calls at once), each until it verifies or the time is up.

    assert_complete(lineage_fleet, rids)
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, TextIO

import asyncpg

from tests.support.fleet import REPO

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
    done = subprocess.run([sys.executable, "-m", "tests.support.record_check", str(timeout_s), *rids],
                          env={**os.environ, **fleet.env}, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s + 120, check=False)
    assert done.returncode == 0, f"records not complete:\n{done.stdout}{done.stderr[-3000:]}"
    counts = asyncio.run(_counts(fleet.owner_dsn, fleet.schema, rids))
    other = {(rid, kind): n for (rid, kind), n in counts.items() if n != times and kind in once}
    assert not other, f"recorded other than {times} times (response id, message type): count {other}"
    print(f"record check: {len(rids)} requests complete and verified in {time.monotonic() - started:.1f} s\n"
          + "\n".join(line for line in done.stdout.splitlines() if line.startswith("COMPLETE")))


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


async def _main(timeout_s: float, rids: list[str]) -> int:
    """Every response id checked at once (each its own `replay verify`, as the operator runs it): a case waits
    for its slowest request's record, not for the sum of them."""
    end, calls = time.monotonic() + timeout_s, asyncio.Semaphore(PARALLEL)
    real, real_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _TaskOut(real)
    try:
        results = await asyncio.gather(*(_check(rid, end, calls) for rid in rids))  # a task (a context) each
    finally:
        sys.stdout, sys.stderr = real, real_err
    for _, line in results:
        print(line)
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(float(sys.argv[1]), sys.argv[2:])))
