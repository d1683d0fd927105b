"""The fleet's own time per request, as the edge reports it (moe_core.runtime.observability.ledger): from the request's
arrival (EdgeHeaders stamps it) to its reply, minus the model time on the request's critical path as the Answer's
overhead ledger gives it.

- A JSON reply carries `x-moe-overhead-ms` and `x-moe-model-ms` (the model time subtracted): wall = the two added.
- A stream's headers leave before anything of the answer is known: they carry `x-moe-edge-ms`, the edge's own time
  until the request entered the fleet (parse, authorise, publish), under its own name, since a header called
  overhead that holds only its first part would be read as the whole. The whole figure goes out with the answer,
  in the last event the protocol has for the answer's metadata (OpenAI: the final chunk's `moe.overhead_ms`
  and `moe.model_ms`), which is what a client reading the stream sees last.
"""

from __future__ import annotations

import time

from starlette.requests import Request

from moe_core.contracts import Answer
from moe_core.runtime.observability.ledger import critical_model_ms, overhead_ms
from moe_core.runtime.observability.metrics import GATEWAY_MODEL_TIME, GATEWAY_OVERHEAD

ARRIVED = "moe_arrived"  # request.state key: perf_counter at the request's arrival
OVERHEAD_HEADER = "x-moe-overhead-ms"
MODEL_HEADER = "x-moe-model-ms"
EDGE_HEADER = "x-moe-edge-ms"


def arrived(http: Request) -> float:
    return float(getattr(http.state, ARRIVED, None) or time.perf_counter())


def figures(answer: Answer, since: float, endpoint: str, stream: bool) -> dict[str, float]:
    """overhead_ms and model_ms of a request that arrived at `since` (perf_counter), answered by `answer` now
    (observed as moe_gateway_overhead_seconds and moe_gateway_model_seconds)."""
    costs = [*answer.ledger, answer.cost]
    done = {"overhead_ms": overhead_ms(time.perf_counter() - since, costs),
            "model_ms": round(critical_model_ms(costs), 1)}
    labels = (endpoint, "true" if stream else "false")
    GATEWAY_OVERHEAD.labels(*labels).observe(done["overhead_ms"] / 1000)
    GATEWAY_MODEL_TIME.labels(*labels).observe(done["model_ms"] / 1000)
    return done


def headers(answer: Answer, since: float, endpoint: str) -> dict[str, str]:
    done = figures(answer, since, endpoint, stream=False)
    return {OVERHEAD_HEADER: f"{done['overhead_ms']:.1f}", MODEL_HEADER: f"{done['model_ms']:.1f}"}


def edge_header(since: float) -> dict[str, str]:
    return {EDGE_HEADER: f"{(time.perf_counter() - since) * 1000:.1f}"}
