"""The BLAS thread pool of a service process (numpy's OpenBLAS), limited once when the service starts.

OpenBLAS hands a product of more than ~460,000 elements (e.g. 1,200 rows of 384) to its own thread pool, whose
threads then spin-wait for more work: in the planner, once a cache scope held 1,200 entries every lookup cost
~30 ms more CPU (docs/performance-history.md, "The planner's jump"); graph-rag's document search has the same product. A
service scales by processes and replicas, each answering many requests at once, so by default its products stay
on the calling thread (MOE_BLAS_THREADS=1).

numpy is not imported here: ~0.5-0.9 s of CPU in each process of the services that never use it (the gateway, the
merger, the expert worker...). The limit reaches a BLAS loaded already through threadpoolctl, and one loaded later
(numpy imported on first use) through OPENBLAS_NUM_THREADS, which OpenBLAS reads when it loads."""

from __future__ import annotations

import os

from threadpoolctl import threadpool_info, threadpool_limits


def limit_blas_threads(threads: int) -> None:
    """From now on, every BLAS library loaded in this process uses at most `threads` threads."""
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)  # an OpenBLAS loaded later starts limited
    threadpool_limits(limits=threads, user_api="blas")


def blas_threads() -> list[int]:
    """The thread count of each BLAS library loaded in this process."""
    return [int(info["num_threads"]) for info in threadpool_info() if info.get("user_api") == "blas"]
