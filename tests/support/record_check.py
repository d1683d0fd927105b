"""Every answered request's record is complete, as the operator's `replay verify` sees it: codex-lineage stored every
Kafka record the request left on the topics (none "not recorded yet", none missing), the signatures, the chain, the
checkpoints and the timestamps verify, and the record holds the request once and one answer. All the response ids are
verified in one process (`python -m tests.support.record_check RID…` in the fleet's environment), each until it
verifies or the time is up.

    assert_complete(lineage_fleet, rids)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import asyncpg

from tests.support.fleet import REPO

if TYPE_CHECKING:
    from tests.lineage.conftest import LineageFleet

ONCE = ("ChatRequest", "Answer")  # message types a request's record holds exactly once


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
    print(f"record check: {len(rids)} requests complete and verified in {time.monotonic() - started:.1f} s")


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


async def _verified(rid: str) -> tuple[bool, str]:
    from codex_lineage.replay import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = await main(["verify", rid])
    text = out.getvalue()
    return code == 0 and "not recorded yet" not in text, text


async def _main(timeout_s: float, rids: list[str]) -> int:
    end, failed = time.monotonic() + timeout_s, 0
    for rid in rids:
        while True:
            ok, text = await _verified(rid)
            if ok or time.monotonic() > end:
                break
            await asyncio.sleep(1)
        print(f"{'COMPLETE' if ok else 'INCOMPLETE'} {rid}\n{text if not ok else text.splitlines()[-1]}")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(float(sys.argv[1]), sys.argv[2:])))
