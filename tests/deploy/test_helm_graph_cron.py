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

