"""Where each service's CPU goes, by kind of work, from the py-spy profiles a bench run kept (`--profile`):

  python -m bench.profile_split bench/results/<stamp>   (the <stamp>-profile-<service>.txt files)

Each sample is given to the innermost frame that belongs to a kind (so the tracing done inside a publish counts
as tracing, the JSON encoding inside pydantic as pydantic). The bench's py-spy (--nonblocking) also samples
threads that wait: a sample whose innermost frame is a wait (the event loop in its native poll, `Runner.run`
with nothing above it, a sleeping thread) is counted as idle and left out, so the shares are shares of the
remaining (busy) samples. Native code (the loop's own C, socket calls) is not seen: it counts as its caller."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

KINDS = (  # (kind, substrings of a frame's file), innermost match wins
    ("tracing", ("opentelemetry",)),
    ("metrics", ("prometheus_client", "faststream/prometheus", "observability/metrics")),
    ("logging", ("logging/__init__", "faststream/_internal/logger", "middlewares/logging")),
    ("pydantic", ("pydantic",)),
    ("kafka client", ("aiokafka",)),
    ("redis client", ("redis/",)),
    ("http (httpx, uvicorn, starlette)", ("httpx", "httpcore", "h11", "uvicorn", "starlette", "fastapi", "anyio")),
    ("embedding (onnxruntime, tokenizers)", ("onnxruntime", "tokenizers", "embeddings.py")),
    ("neo4j driver", ("neo4j/",)),
    ("faststream runtime", ("faststream", "fast_depends")),
    ("moe_core runtime (bus, consumer, run versions)", ("moe_core/runtime/bus", "moe_core/stage/spec", "moe_core/run_",
                                                        "moe_core/offset", "moe_core/runtime/replay")),
    ("service code", ("services/", "moe_core/")),
    ("asyncio loop", ("asyncio/",)),
)


IDLE_LEAVES = ("Runner.run (asyncio/runners.py", "exit_with.<locals>.watch", "Condition.wait (threading.py",
               "_worker (concurrent/futures/thread.py", "select (selectors.py", "Event.wait (threading.py")


def kind_of(stack: list[str]) -> str:
    if stack[-1].startswith(IDLE_LEAVES):
        return "idle"
    for frame in reversed(stack):
        for kind, parts in KINDS:
            if any(p in frame for p in parts):
                return kind
    return "other"


def split(collapsed: str) -> tuple[int, Counter[str]]:
    kinds: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        kind = kind_of(stack.split(";"))
        if kind != "idle":
            total += int(count)
            kinds[kind] += int(count)
    return total, kinds


def main(prefix: str) -> None:
    files = sorted(Path(prefix).parent.glob(f"{Path(prefix).name}*-profile-*.txt"))
    for path in files:
        total, kinds = split(path.read_text())
        if total < 50:
            continue
        service = path.stem.split("-profile-", 1)[1]
        shares = ", ".join(f"{k} {100 * n / total:.1f} %" for k, n in kinds.most_common())
        print(f"{service} ({total} busy samples): {shares}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest")
