"""The router's CPU per trivial question, MiniLM against the static embedding, in process (issue 52):

    python -m bench.router_cpu [N] [--rounds 2]

N distinct bench trivial questions (bench.scenarios.trivial_question) through `SemanticRouter.route` with each
embedder, alternately, BLAS at one thread as in the services. Reported per question: CPU (process time, every thread:
MiniLM runs in a worker thread), function calls (cProfile of the calling thread) and MiniLM runs (calls of
`Vectors.embed_array`, one model run each). The prototypes' matrix is set from an in-process embedding (no Chroma:
seeding is a start-up cost, not a request's); the broker-level figure is tests.infra.planner.planner_load.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from bench.scenarios import trivial_question
from moe_core.knowledge.static_embedding import get_static_embedder
from planner.cache_text import normalise
from planner.router import SemanticRouter
from planner.settings import PlannerSettings
from planner.vectors import Vectors


class CountingVectors(Vectors):
    """The planner's Vectors, counting MiniLM runs (one per `embed_array` call)."""

    runs = 0

    async def embed_array(self, texts: list[str]) -> Any:
        CountingVectors.runs += 1
        return await super().embed_array(texts)


async def router_for(mode: str, settings: PlannerSettings) -> SemanticRouter:
    vectors = CountingVectors("http://127.0.0.1:1")  # never opened: the prototypes are embedded here
    settings = settings.model_copy(update={"router_embedding": mode})
    router = SemanticRouter(vectors, *settings.router_distances(),
                            embedder=get_static_embedder() if mode == "static" else None)
    texts = [normalise(q) for qs in router.prototypes.values() for q in qs]
    matrix = np.asarray(await router._embed(texts), dtype=np.float32)
    router._matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    router._labels = [c for c, qs in router.prototypes.items() for _ in qs]
    router._seeded = True
    return router


async def measure(router: SemanticRouter, questions: list[str]) -> dict[str, Any]:
    profiler = cProfile.Profile()
    runs = CountingVectors.runs
    cpu = time.process_time()
    profiler.enable()
    for question in questions:
        await router.route(question)
    profiler.disable()
    cpu = time.process_time() - cpu
    stats = pstats.Stats(profiler)
    n = len(questions)
    return {"cpu_ms": round(cpu * 1000 / n, 3), "calls": round(stats.total_calls / n, 1),  # type: ignore[attr-defined]
            "minilm_runs": (CountingVectors.runs - runs) / n}


async def run(n: int, rounds: int) -> dict[str, Any]:
    settings = PlannerSettings()
    routers = {mode: await router_for(mode, settings) for mode in ("minilm", "static")}
    for router in routers.values():  # warm: the model and the table loaded, the first run's allocations made
        await router.route("warm up")
    out: dict[str, Any] = {mode: [] for mode in routers}
    for r in range(rounds):
        for mode, router in routers.items():
            questions = [trivial_question(i) + f" ({mode} {r})" for i in range(n)]  # distinct: no recent-vector hit
            out[mode].append(await measure(router, questions))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.n, args.rounds)), indent=1))


if __name__ == "__main__":
    main()
