"""OPA's CPU per decision, split: a private OPA over a copy of policy/opa (tests.support.opa), and per operation the
ms of OPA's CPU (utime + stime from /proc) over N of them, the kinds alternated round by round.

    python -m bench.opa_cpu [N] [ROUNDS]     # default 200 and 3

- `decide`: PolicyClient.decide, one after another (the decision and the version read after it, issue 52);
- `bundle`: the same against a second private OPA serving the modules as a signed bundle (moe_core.policy.bundle):
  the answer names the bundle's revision, no read;
- `post`: the decision alone (`POST /v1/data/<path>`): what a decision costs OPA without the version read, the
  floor of any design that carries the version in the answer;
- `provenance`: the same with `?provenance=true` (what a bundle revision in the answer would add to it);
- `read`: the version read alone (`GET /v1/policies`: every module's text and syntax tree)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench import infra  # noqa: F401  (puts deploy/local's fleetlib on the path, for the opa binary)
from bench.procs import cpu_seconds
from moe_core.policy import PolicyClient
from tests.support import opa

PATH = "moe/knowledge/decision"
INPUT = {"action": "knowledge.import", "tenant": "t1",
         "principal": {"id": "key:a", "key_id": "a", "role": "admin", "tenants": ["t1"]},
         "resource": {"domains": {"resolved": ["math"], "unresolved_labels": []}}}


async def _ms_per_op(pid: int, n: int, op: Callable[[], Awaitable[object]]) -> float:
    before = cpu_seconds([pid])
    for _ in range(n):
        await op()
    return (cpu_seconds([pid]) - before) * 1000 / n


async def measure(url: str, pid: int, bundled: tuple[str, int], n: int, rounds: int) -> dict[str, list[float]]:
    client, under_bundle = PolicyClient(url), PolicyClient(bundled[0])
    raw = httpx.AsyncClient(timeout=10)

    async def post() -> object:
        return (await raw.post(f"{url}/v1/data/{PATH}", json={"input": INPUT})).raise_for_status()

    async def provenance() -> object:
        return (await raw.post(f"{url}/v1/data/{PATH}?provenance=true", json={"input": INPUT})).raise_for_status()

    async def read() -> object:
        return (await raw.get(f"{url}/v1/policies")).raise_for_status()

    kinds: dict[str, Callable[[], Awaitable[object]]] = {
        "decide": lambda: client.decide(PATH, INPUT), "bundle": lambda: under_bundle.decide(PATH, INPUT),
        "post": post, "provenance": provenance, "read": read}
    out: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        for op in kinds.values():  # warm: connections, OPA's prepared queries
            for _ in range(10):
                await op()
        for _ in range(rounds):
            for kind, op in kinds.items():
                out[kind].append(await _ms_per_op(bundled[1] if kind == "bundle" else pid, n, op))
    finally:
        await client.close()
        await under_bundle.close()
        await raw.aclose()
    return out


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 200
    rounds = int(argv[1]) if len(argv) > 1 else 3
    with tempfile.TemporaryDirectory() as work, opa.private_engine(Path(work)) as engine, \
            tempfile.TemporaryDirectory() as other, opa.bundle_engine(Path(other), opa.policy_modules()) as (bundle, _):
        assert engine.proc is not None and bundle.proc is not None
        size = len(httpx.get(f"{engine.url}/v1/policies", timeout=10).content)
        results = asyncio.run(measure(engine.url, engine.proc.pid, (bundle.url, bundle.proc.pid), n, rounds))
    print(f"OPA's CPU per operation, ms ({n} a round, {rounds} rounds alternated; GET /v1/policies {size:,} bytes)")
    for kind, values in results.items():
        print(f"{kind:11s} " + "  ".join(f"{v:6.3f}" for v in values))


if __name__ == "__main__":
    main(sys.argv[1:])
