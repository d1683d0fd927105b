"""The garbage collector's work in a fleet service, for bench.planner_memory: this folder on a service's PYTHONPATH
(and BENCH_GCTRACE_FILE set) counts each generation's collections, the objects they freed and the CPU they took
(thread time, gc.callbacks), and rewrites BENCH_GCTRACE_FILE with the totals every second. Nothing happens without
BENCH_GCTRACE_FILE. BENCH_GC_THRESHOLD="a,b,c" sets gc.set_threshold(a, b, c) first (a trial of another policy).
"""

from __future__ import annotations

import os

if os.environ.get("BENCH_GCTRACE_FILE"):
    import gc
    import json
    import threading
    import time

    path = os.environ["BENCH_GCTRACE_FILE"]
    totals = {g: {"collections": 0, "collected": 0, "cpu_ms": 0.0, "max_ms": 0.0} for g in range(3)}
    started = [0.0]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
            return
        took = (time.thread_time() - started[0]) * 1e3
        found = totals[info["generation"]]
        found["collections"] += 1
        found["collected"] += info["collected"]
        found["cpu_ms"] += took
        found["max_ms"] = max(found["max_ms"], took)

    def write() -> None:
        while True:
            time.sleep(1)
            with open(f"{path}.tmp", "w") as out:
                json.dump({"generations": totals, "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()},
                          out)
            os.replace(f"{path}.tmp", path)

    if os.environ.get("BENCH_GC_THRESHOLD"):
        gc.set_threshold(*(int(x) for x in os.environ["BENCH_GC_THRESHOLD"].split(",")))
    gc.callbacks.append(observe)
    threading.Thread(target=write, daemon=True, name="gctrace").start()
