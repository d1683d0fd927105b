"""The chart's optional Prometheus Operator resources (values: monitoring, off by default): a ServiceMonitor per
component that serves /metrics, job = the component's name (the jobs the alert rules watch), and a PrometheusRule
rendering the repository's alert rules as they are (one source: helm/moe-fleet/alerts links grafana/alerts)."""

from __future__ import annotations

import pytest
import yaml

from moe_core.stage import registry
from tests.deploy.deploy_support import CHART, REPO, rendered_docs

pytestmark = pytest.mark.unit

RULES = REPO / "grafana" / "alerts" / "moe-fleet.rules.yaml"
ON = ["monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true"]
KINDS = ("ServiceMonitor", "PrometheusRule")


def test_off_by_default() -> None:
    assert [d["kind"] for d in rendered_docs([]) if d["kind"] in KINDS] == []


def test_the_prometheus_rule_is_the_repositorys_rules_file() -> None:
    assert (CHART / "alerts").resolve() == RULES.parent.resolve()
    docs = rendered_docs([], [*ON, "monitoring.prometheusRule.labels.release=kube-prometheus-stack"])
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_runbook_links_get_the_configured_base() -> None:
    base = "https://git.example.com/moe/-/blob/v0.1.0"
    docs = rendered_docs([], [*ON, f"monitoring.runbookBaseUrl={base}/"])
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert urls and all(u.startswith(f"{base}/docs/runbooks.md#") for u in urls), urls


def test_every_service_the_alerts_watch_has_a_service_monitor_named_by_its_job() -> None:
    monitors = [d for d in rendered_docs([], ON) if d["kind"] == "ServiceMonitor"]
    jobs = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in monitors}
    assert set(jobs) >= {s.name for s in registry.FLEET} | {"opa"}  # MoEServiceDown's and MoEPolicyEngineDown's jobs
    assert "llm" not in jobs  # metrics: false (no /metrics)
    for name, monitor in jobs.items():
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == name
        assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
