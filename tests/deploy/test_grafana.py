"""The Grafana dashboards as files: one folder, one dashboard per concern, valid PromQL on metrics the fleet
defines, provisioning that points at the mounts. (That every panel returns data from a real Prometheus is
tests/observability/grafana/test_dashboards_live.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from tests.deploy.deploy_support import COMPOSE, DASHBOARDS, GRAFANA, grafana_to_promql, load_yaml

pytestmark = pytest.mark.unit

# One dashboard per concern (file stem -> uid).
CONCERNS = {
    "fleet-overview": "moe-fleet-overview",
    "stages": "moe-stages",
    "cache": "moe-cache",
    "inference": "moe-inference",
    "knowledge-graph": "moe-knowledge-graph",
    "audit-lineage": "moe-audit-lineage",
}
# Metrics some panel must show (the fleet's core signals).
REQUIRED_METRICS = [
    "moe_gateway_requests_total", "moe_gateway_request_seconds_bucket", "moe_stage_seconds_bucket",
    "moe_consumer_lag_messages", "moe_inference_seconds_bucket", "moe_inference_tokens_total",
    "moe_inference_failovers_total", "moe_messages_dead_lettered_total", "moe_merger_answers_total",
    "moe_gateway_exact_cache_total", "moe_semantic_cache_total", "moe_lineage_records_total",
    "moe_messages_published_total",
    "moe_gateway_overhead_seconds_bucket", "moe_gateway_model_seconds_sum",  # the overhead ledger (issue 52)
]
# Series no service exports that a query may still name: Prometheus's own per target.
PROMETHEUS_SERIES = {"up"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def all_exprs() -> list[str]:
    return [t["expr"] for d in dashboards().values() for p in panels(d) for t in p["targets"]]


def test_one_folder_one_dashboard_per_concern() -> None:
    dash = dashboards()
    assert set(dash) == set(CONCERNS)
    assert {d["uid"] for d in dash.values()} == set(CONCERNS.values())
    for stem, d in dash.items():
        assert d["uid"] == CONCERNS[stem]
        assert "moe-fleet" in d["tags"]
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), stem
        for panel in panels(d):
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"] and panel["title"] and panel["description"], panel["title"]
    assert not list(GRAFANA.rglob("*.json")) or {p.parent for p in GRAFANA.rglob("*.json")} == {DASHBOARDS}


def test_dashboards_show_the_core_signals() -> None:
    exprs = "\n".join(all_exprs())
    for metric in REQUIRED_METRICS:
        assert metric in exprs, metric


def rule_exprs() -> list[str]:
    rules = load_yaml(GRAFANA / "alerts" / "moe-fleet.rules.yaml")["groups"]
    return [rule["expr"] for group in rules for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL query selects (from its syntax tree, so label names and functions are not taken)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(grafana_to_promql(expr)), visit)
    return names


def exported_metrics() -> set[str]:
    """The series names the fleet's processes export: every family of the one registry
    (moe_core.runtime.observability)."""
    import mcp_service.registry  # noqa: F401  (registers the precision tools' metrics)
    from moe_core.runtime.observability import lag  # noqa: F401  (the consumer-lag collector)
    from moe_core.runtime.observability.metrics import REGISTRY

    known: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        known |= {family.name + s for s in suffixes}
    return known


def test_metric_names_are_read_from_the_query_not_guessed() -> None:
    assert metric_names('sum by (le, service) (rate(a_bucket{service=~"$service"}[$__rate_interval])) '
                        "/ on (service) group_left b_total or vector(0)") == {"a_bucket", "b_total"}


def test_dashboards_and_alerts_read_only_metrics_the_fleet_exports() -> None:
    """A panel or alert on a metric no service exports shows nothing and never fires (e.g. FastStream's
    faststream_* after its Prometheus middleware was taken out of the services, issue 29)."""
    known = exported_metrics() | PROMETHEUS_SERIES
    for source, exprs in (("dashboards", all_exprs()), ("alert rules", rule_exprs())):
        used = set().union(*(metric_names(e) for e in exprs))
        assert used and used <= known, (source, sorted(used - known))


def test_dashboard_promql_parses() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(x[5m])")
    for expr in all_exprs():
        promql_parser.parse(grafana_to_promql(expr))


def test_grafana_provisioning_points_at_the_mounts() -> None:
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "moe-fleet.yaml")["providers"][0]
    obs = load_yaml(COMPOSE / "compose.observability.yaml")["services"]["grafana"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in obs["volumes"]
    home = obs["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (DASHBOARDS / Path(home).name).is_file(), home
    datasource = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")["datasources"][0]
    assert datasource["type"] == "prometheus"
