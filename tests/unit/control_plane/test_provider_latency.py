"""The providers page's latency percentiles (control_plane.ops.providers.latency_percentiles): the three quantiles
are asked of Prometheus for one instant, and a server whose answer lacks one is not listed with a partial set
(a CI run saw {p95, p99} without p50: a scrape was stored between two of the queries)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from control_plane.ops.providers import latency_percentiles
from control_plane.ops.settings import OpsSettings

pytestmark = pytest.mark.unit


def vector(*series: tuple[str, str]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"server": server}, "value": [1.0, value]} for server, value in series]}}


async def test_the_quantiles_are_read_at_one_instant_and_only_whole_sets_are_listed() -> None:
    asked: list[httpx.QueryParams] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        first = len(asked) == 1  # p50: the older sample had no increase yet for gpu-2
        return httpx.Response(200, json=vector(("gpu-1", "0.25"), ("gpu-2", "NaN" if first else "0.5")))

    async with httpx.AsyncClient(transport=httpx.MockTransport(prometheus)) as http:
        found, source = await latency_percentiles(OpsSettings(prometheus_url="http://prometheus"), http)
    assert len(asked) == 3 and len({p["time"] for p in asked}) == 1
    assert [p["query"].split(",")[0] for p in asked] == [f"histogram_quantile({q}" for q in ("0.5", "0.95", "0.99")]
    assert found == {"gpu-1": {"p50": 0.25, "p95": 0.25, "p99": 0.25}} and source.startswith("prometheus")
