"""Every panel of every dashboard returns data from a real Prometheus scraping a real fleet that served
traffic (the query as Grafana would send it: `$__rate_interval` and `$service` filled in)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from tests.deploy.deploy_support import grafana_to_promql
from tests.observability.traffic import Traffic
from tests.support.prometheus_server import Prometheus

pytestmark = pytest.mark.e2e

DASHBOARDS = Path(__file__).resolve().parents[3] / "grafana" / "dashboards"
RATE_INTERVAL = "30m"  # covers both traffic rounds, however long the dashboards before this one took


def panel_queries(path: Path) -> list[tuple[str, str]]:
    dash = json.loads(path.read_text())
    return [(panel["title"], target["expr"]) for panel in dash["panels"] if panel["type"] != "row"
            for target in panel["targets"]]


def finite_values(prom: Prometheus, expr: str) -> int:
    """How many series of the instant query have a number (not NaN, e.g. a quantile of no observations)."""
    return len([series for series in prom.query(expr) if not math.isnan(float(series["value"][1]))])


@pytest.mark.parametrize("dashboard", sorted(p.stem for p in DASHBOARDS.glob("*.json")))
def test_every_panel_returns_data(dashboard: str, prom: Prometheus, traffic: Traffic) -> None:
    queries = panel_queries(DASHBOARDS / f"{dashboard}.json")
    assert queries
    missing = dict(queries)
    # gauges such as consumer lag appear with the next scrape after a fetch; a rate of a labelled series needs an
    # increase after its first sample, so a panel still empty after a while gets one more round of traffic
    start = time.monotonic()
    end, topped_up = start + 60, False
    while missing and time.monotonic() < end:
        missing = {title: expr for title, expr in missing.items()
                   if finite_values(prom, grafana_to_promql(expr, RATE_INTERVAL)) == 0}
        if missing and not topped_up and time.monotonic() - start > 20 and traffic.more is not None:
            traffic.more()
            topped_up = True
        elif missing:
            time.sleep(1)
    # one line: the short test summary shows the first line of the message only
    assert not missing, f"{dashboard}: panels without data: " + " | ".join(f"{t}: {e}" for t, e in missing.items())


def test_prometheus_scrapes_every_service_of_the_fleet(prom: Prometheus, traffic: Traffic) -> None:
    up = {s["metric"]["job"]: s["value"][1] for s in prom.query("up")}
    assert {"gateway", "planner", "expert-worker", "merger", "research", "critic", "mcp", "graph-rag",
            "graph-ingest", "gap-healer"} <= set(up)
    assert all(v == "1" for v in up.values()), up
