"""`python -m bench.planner_knee N STEP [full|trivial] [KEY=VALUE ...]`: the bench fleet (no LiteLLM), N distinct
requests of one path sent one at a time, and every STEP requests the CPU ms per request of the planner, Chroma,
Kafka and Redis (from /proc) and the planner's RSS. How the planner's jump after ~1,200 cache entries was found
(docs/performance-history.md, "The planner's jump"); KEY=VALUE: extra environment for the fleet. Run it in `unshare
-n`."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from bench import loadgen, procs
from bench.infra import connect
from bench.runner import _delete_topics, _key, _pid_file, fleet_env
from bench.scenarios import FLEET_MODEL, PATHS, SCRIPT


def _cpu(pid: int) -> float:
    return procs.cpu_seconds(procs.tree(pid, procs.children_map()))


async def _drive(url: str, token: str, path: str, total: int, step: int, planner: int, infra: dict[str, int]) -> None:
    target = loadgen.Target(path, url, FLEET_MODEL, token, PATHS[path].check, PATHS[path].question)
    async with loadgen.session(8) as http:
        t0, c0, i0, errors = time.time(), _cpu(planner), {n: _cpu(p) for n, p in infra.items()}, 0
        for i in range(1, total + 1):
            errors += (await loadgen.one(http, target, False)).error is not None
            if i % step:
                continue
            c1, i1 = _cpu(planner), {n: _cpu(p) for n, p in infra.items()}
            rss = procs.rss_mb({"planner": planner})["planner"]
            print(f"{i:6d} planner {1000 * (c1 - c0) / step:6.1f} ms/req  "
                  + "  ".join(f"{n} {1000 * (i1[n] - i0[n]) / step:5.1f}" for n in i1)
                  + f"  rss {rss:.1f} MB  {step / (time.time() - t0):.1f} req/s  errors {errors}", flush=True)
            t0, c0, i0, errors = time.time(), c1, i1, 0


def main(argv: list[str]) -> int:
    total, step = int(argv[0]), int(argv[1])
    path = argv[2] if len(argv) > 2 else "full"
    extra = dict(a.split("=", 1) for a in argv[3:])
    eps = connect()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    llm_url, llm = procs.start_llm_server(SCRIPT)
    fleet = procs.start_fleet(fleet_env(eps, namespace, llm_url, extra), 1, ())
    key_id = None
    try:
        key_id, token = asyncio.run(_key(eps["postgres"], f"tenant-{namespace}"))
        infra = {n: pid for n in ("chroma", "kafka", "redis") if (pid := _pid_file(n))}
        planner = fleet.services["planner"].proc
        assert planner is not None, "the planner did not start"
        asyncio.run(_drive(f"{fleet['gateway'].url}/v1", token, path, total, step, planner.pid, infra))
    finally:
        fleet.stop()
        llm.stop()
        if key_id:
            asyncio.run(_key(eps["postgres"], "", revoke=key_id))
        asyncio.run(_delete_topics(eps["kafka"], namespace))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
