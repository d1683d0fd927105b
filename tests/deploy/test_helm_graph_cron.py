"""The graph's maintenance in the Helm chart: CronJobs (lint, heal) with the gap-healer's image and stores
when graphMaintenance.cronJobs.enabled, the daemon's own schedule off then, none by default. (Lint,
kubeconform and kubernetes-validate run on the ci/graph-cron-values.yaml profile in test_helm.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_support import ANCHORS, CHART, helm, rendered_docs, run

pytestmark = pytest.mark.unit


def _kinds(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_by_default_the_gap_healer_schedules_its_runs_itself() -> None:
    docs = rendered_docs([])
    assert not _kinds(docs, "CronJob")
    env = _kinds(docs, "ConfigMap")["moe-env"]["data"]
    assert env["MOE_GRAPH_SCHEDULE_ENABLED"] == "true"


def test_cron_jobs_run_lint_and_heal_with_the_gap_healers_stores() -> None:
    docs = rendered_docs(["ci/graph-cron-values.yaml"])
    jobs = _kinds(docs, "CronJob")
    assert set(jobs) == {"moe-graph-lint", "moe-graph-heal"}
    assert jobs["moe-graph-lint"]["spec"]["schedule"] == "15 3 * * *"
    assert jobs["moe-graph-heal"]["spec"]["schedule"] == "@hourly"
    for kind, job in (("lint", jobs["moe-graph-lint"]), ("heal", jobs["moe-graph-heal"])):
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["command"] == ["python", "-m", "gap_healer", "run", kind]
        env = {e["name"]: e for e in container["env"]}
        assert env["MOE_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "moe-postgres"
        assert env["MOE_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "moe-redis"
        assert env["MOE_NEO4J_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "moe-neo4j"
        assert env["MOE_SERVICE_NAME"]["value"] == "gap-healer"
        assert container["envFrom"] == [{"configMapRef": {"name": "moe-env"}}]
    config = _kinds(docs, "ConfigMap")["moe-env"]["data"]
    assert config["MOE_GRAPH_SCHEDULE_ENABLED"] == "false"  # one scheduler: the CronJobs
    assert config["MOE_PROMETHEUS_URL"] == "http://prometheus-server.monitoring:9090"


def test_a_bad_cron_schedule_is_refused() -> None:
    result = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "graphMaintenance.cronJobs.enabled=true",
                  "--set", "graphMaintenance.cronJobs.lint=every night"])
    assert result.returncode != 0 and "graphMaintenance" in result.stderr



def test_the_heal_run_reaches_opa_with_the_token_and_the_lint_run_does_not() -> None:
    """A heal run decides its writes at OPA (gap_healer.review) as the gap-healer does: with the chart's
    authenticated OPA it needs the token, and OPA's NetworkPolicy must admit its pods (labelled graph-heal)."""
    docs = rendered_docs(["ci/graph-cron-values.yaml"])
    jobs = _kinds(docs, "CronJob")

    def env(job: str) -> dict[str, Any]:
        [container] = jobs[job]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e for e in container["env"]}

    token = env("moe-graph-heal")["MOE_OPA_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "moe-opa", "key": "token"}
    assert "MOE_OPA_TOKEN" not in env("moe-graph-lint")  # least privilege: lint decides nothing at OPA
    opa = _kinds(docs, "NetworkPolicy")["moe-opa-ingress"]["spec"]["ingress"]
    admitted = [peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
                for rule in opa for peer in rule.get("from", []) if "podSelector" in peer]
    assert "graph-heal" in admitted and "graph-lint" not in admitted
    plain = _kinds(rendered_docs([]), "NetworkPolicy")["moe-opa-ingress"]["spec"]["ingress"]
    assert "graph-heal" not in [peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
                                for rule in plain for peer in rule.get("from", []) if "podSelector" in peer]
