"""Which queries keep the local Neo4j busy while something else runs (issue 52: graph-rag's reads timed out):

    python -m bench.neo4j_queries [--seconds 300] [--every 0.1] [--min-ms 100] [--out FILE]

Polls `SHOW TRANSACTIONS` (Neo4j Community has it) every EVERY seconds for SECONDS, or until interrupted, and
prints every query seen running for at least MIN_MS: how often it was seen, its longest elapsed time, its status
(e.g. Blocked) and its first characters, slowest first. Neo4j's own CPU over the window beside it. Run it beside
the measurement, in the same network namespace (`unshare -n`), against the infrastructure that measurement uses.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import signal
import time
from pathlib import Path
from typing import Any

from bench.graph_task_costs import neo4j_cpu_s
from bench.infra import connect

SHOW = ("SHOW TRANSACTIONS YIELD transactionId, currentQuery, elapsedTime, status, username "
        "RETURN transactionId, currentQuery, elapsedTime.milliseconds AS ms, status")


def note(seen: dict[str, dict[str, Any]], rows: list[dict[str, Any]], min_ms: int) -> None:
    """Keep, per query text, the longest time it was seen running, its statuses and how many polls saw it."""
    for row in rows:
        query = " ".join(str(row.get("currentQuery") or "").split())
        if not query or query.startswith("SHOW TRANSACTIONS") or (row.get("ms") or 0) < min_ms:
            continue
        entry = seen.setdefault(query, {"polls": 0, "max_ms": 0, "statuses": set(), "transactions": set()})
        entry["polls"] += 1
        entry["max_ms"] = max(entry["max_ms"], int(row["ms"]))
        entry["statuses"].add(str(row.get("status")).split(" ")[0])
        entry["transactions"].add(row.get("transactionId"))


async def sample(seconds: float, every: float, min_ms: int) -> dict[str, Any]:
    from moe_core.knowledge.graph import GraphDB

    eps = connect(["neo4j"])
    neo4j_auth = importlib.import_module("tests.support.store_auth").neo4j_auth
    db = GraphDB(eps["neo4j"], *neo4j_auth())
    seen: dict[str, dict[str, Any]] = {}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    started, cpu = time.monotonic(), neo4j_cpu_s()
    try:
        while not stop.is_set() and time.monotonic() - started < seconds:
            async with db.driver.session(database="system") as session:
                note(seen, await (await session.run(SHOW)).data(), min_ms)
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
    finally:
        await db.close()
    rows = sorted(({"query": q[:300], "polls": e["polls"], "max_ms": e["max_ms"], "statuses": sorted(e["statuses"]),
                    "transactions": len(e["transactions"])} for q, e in seen.items()), key=lambda r: -r["max_ms"])
    return {"seconds": round(time.monotonic() - started, 1), "neo4j_cpu_s": round(neo4j_cpu_s() - cpu, 2),
            "queries": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.neo4j_queries", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--min-ms", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(sample(args.seconds, args.every, args.min_ms))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['seconds']} s, Neo4j CPU {result['neo4j_cpu_s']} s")
    for row in result["queries"]:
        print(f"{row['max_ms']:>7} ms max, {row['polls']:>4} polls, {row['transactions']:>3} tx, "
              f"{','.join(row['statuses'])}: {row['query'][:160]}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
