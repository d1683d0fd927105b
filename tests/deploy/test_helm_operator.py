"""The chart's options for a platform team (ci/operator-values.yaml): Strimzi's KafkaTopic and KafkaUser resources
instead of the kafka-setup Job, with the retention and the ACLs the code gives (the same as the Job would apply);
KEDA for every stage with its fallback; one CA bundle for the stores' TLS; extra env and volumes; topology spread
and a disruption budget per component; OPA behind its token; the backup CronJob. (kubeconform validates this
profile against the KEDA, Strimzi and Prometheus Operator schemas in test_helm.py.)"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from moe_core.provision import broker_acls
from moe_core.runtime.retention import retention_days, retention_ms, topic_label
from moe_core.stage import registry
from tests.deploy.deploy_support import CHART, chart_values, deep_merge, load_yaml, rendered_docs

pytestmark = pytest.mark.unit
PROFILE = ["ci/operator-values.yaml"]
OPS = {"read": "Read", "write": "Write", "describe": "Describe", "describe_configs": "DescribeConfigs"}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return rendered_docs(PROFILE)


def kind(docs: list[dict[str, Any]], k: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == k}


def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {n: d["spec"]["template"]["spec"] for n, d in kind(docs, "Deployment").items()}
    out |= {n: d["spec"]["template"]["spec"] for n, d in kind(docs, "Job").items()}
    out |= {n: d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for n, d in kind(docs, "CronJob").items()}
    return out


def test_strimzi_topics_carry_the_retention_the_stages_would_apply(docs: list[dict[str, Any]]) -> None:
    values = deep_merge(chart_values(), load_yaml(CHART / "ci" / "operator-values.yaml"))
    days = retention_days(json.dumps(values["topics"]["retentionDays"]))
    assert days["audit"] == 3650, "the profile keeps the record ten years"
    topics = {d["spec"]["topicName"]: d for d in kind(docs, "KafkaTopic").values()}
    assert set(topics) == {f"moe.{topic_label(k)}.v1" for k in days}
    for k, n in days.items():
        spec = topics[f"moe.{topic_label(k)}.v1"]
        assert spec["metadata"]["labels"]["strimzi.io/cluster"] == "moe-kafka"
        assert spec["spec"]["config"]["retention.ms"] == retention_ms(n), k
        assert (spec["spec"]["config"].get("cleanup.policy") == "compact,delete") == (k == "cache_entries"), k
        assert (spec["spec"]["partitions"], spec["spec"]["replicas"]) == (6, 3)
    assert "moe-kafka-setup" not in kind(docs, "Job"), "two reconcilers of the same ACLs"
    env = kind(docs, "ConfigMap")["moe-env"]["data"]
    assert env["MOE_KAFKA_CREATE_TOPICS"] == "false"
    assert retention_days(env["MOE_TOPIC_RETENTION_DAYS"]) == days  # the stages read the same days


def test_retention_from_values_reaches_the_setup_job() -> None:
    job = kind(rendered_docs([], ["topics.retentionDays.audit=730"]), "Job")["moe-kafka-setup"]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert retention_days(env["MOE_TOPIC_RETENTION_DAYS"])["audit"] == 730


def test_strimzi_users_have_exactly_the_declared_acls(docs: list[dict[str, Any]]) -> None:
    users = kind(docs, "KafkaUser")
    assert set(users) == {s.name for s in registry.FLEET}
    want: dict[str, set[tuple[str, str, str, str]]] = {}
    for acl in broker_acls.fleet_acls("moe"):
        pattern = "prefix" if acl.pattern == "prefixed" else "literal"
        want.setdefault(acl.principal.removeprefix("User:"), set()).add(
            (acl.resource, acl.name, pattern, OPS[acl.operation]))
    for name, user in users.items():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        got = {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"], op)
               for a in user["spec"]["authorization"]["acls"] for op in a["operations"]}
        assert got == want[name], name


def test_every_stage_scales_on_its_lag_with_a_fallback(docs: list[dict[str, Any]]) -> None:
    scaled = kind(docs, "ScaledObject")
    stages = {f"moe-{s.name}" for s in registry.FLEET if s.name not in ("gateway", "control-plane")}
    assert set(scaled) == stages
    for name, obj in scaled.items():
        fallback = obj["spec"]["fallback"]
        assert fallback["failureThreshold"] == 5
        assert fallback["replicas"] == (4 if name == "moe-expert-worker" else obj["spec"]["maxReplicaCount"])


def test_the_ca_bundle_reaches_every_store_client(docs: list[dict[str, Any]]) -> None:
    ca = "/etc/moe/ca/ca-bundle.pem"
    assert kind(docs, "ConfigMap")["moe-env"]["data"]["MOE_KAFKA_CA_FILE"] == ca
    for name, pod in pods(docs).items():
        if name in ("moe-opa", "moe-llm"):
            continue  # no store clients (fleetEnv: false)
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (env["PGSSLROOTCERT"], env["PGSSLMODE"]) == (ca, "verify-full"), name
        assert env["MOE_REDIS_CA_FILE"] == env["MOE_NEO4J_CA_FILE"] == ca, name
        assert {"name": "ca-bundle", "mountPath": "/etc/moe/ca", "readOnly": True} in container["volumeMounts"]
        [volume] = [v for v in pod["volumes"] if v["name"] == "ca-bundle"]
        assert volume["configMap"] == {"name": "corporate-ca", "items": [{"key": "ca-bundle.pem",
                                                                          "path": "ca-bundle.pem"}]}


def test_extra_env_volumes_and_scheduling(docs: list[dict[str, Any]]) -> None:
    for name, dep in kind(docs, "Deployment").items():
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["HTTPS_PROXY"] == "http://proxy.corp:3128", name
        assert ("EXTRA_FOR_ONE" in env) == (name == "moe-expert-worker"), name
        assert {"name": "corporate-config", "mountPath": "/etc/corporate", "readOnly": True} in container[
            "volumeMounts"]
        assert {"name": "corporate-config", "configMap": {"name": "corporate-config"}} in pod["volumes"]
        assert pod["priorityClassName"] == "moe-fleet" and pod["tolerations"][0]["key"] == "dedicated"
        spread = pod["topologySpreadConstraints"]
        assert [s["topologyKey"] for s in spread] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        assert all(s["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"] for s in spread)
    assert set(kind(docs, "PodDisruptionBudget")) == set(kind(docs, "Deployment"))


def test_opa_admits_its_token_and_its_callers_only(docs: list[dict[str, Any]]) -> None:
    callers = {f"moe-{n}" for n in ("control-plane", "graph-ingest", "gap-healer", "planner")}
    assert callers == {f"moe-{s.name}" for s in registry.FLEET if "MOE_OPA_URL" in s.deploy.compose_env}
    for name, dep in kind(docs, "Deployment").items():
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        has = "MOE_OPA_TOKEN" in env
        assert has == (name in callers | {"moe-opa"}), name
        if has:
            assert env["MOE_OPA_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "moe-opa", "key": "token"}
    authz = kind(docs, "ConfigMap")["moe-opa-system"]["data"]
    assert authz["authz.rego"] == (CHART.parents[1] / "policy" / "opa-system" / "authz.rego").read_text().rstrip()
    off = kind(rendered_docs(PROFILE, ["opa.auth.enabled=false"]), "Deployment")
    assert "--authorization=basic" not in off["moe-opa"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert not any("MOE_OPA_TOKEN" in json.dumps(d) for d in off.values())


def test_the_backup_cronjob_writes_to_its_claim(docs: list[dict[str, Any]]) -> None:
    cron = kind(docs, "CronJob")["moe-backup"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    words = shlex.split(container["args"][0])
    assert words[:5] == ["python", "-m", "control_plane.ops.backup", "create", "--to"]
    assert words[5].startswith("/backups/")
    assert {"name": "backups", "mountPath": "/backups"} in container["volumeMounts"]
    [claim] = [v for v in pod["volumes"] if v["name"] == "backups"]
    assert claim["persistentVolumeClaim"]["claimName"] == "moe-backups"
    pvc = kind(docs, "PersistentVolumeClaim")["moe-backups"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    env = {e["name"]: e for e in container["env"]}
    assert env["MOE_BACKUP_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "moe-backup", "key": "postgres-dsn"}
    assert env["MOE_KAFKA_USERNAME"]["value"] == "admin"  # it reads topic configs and consumer offsets


def test_a_restore_job_is_rendered_only_for_a_named_folder_in_the_backups_pod(docs: list[dict[str, Any]]) -> None:
    """docs/operations.md#backup-and-restore: `backup.restoreFrom` renders a Job in the CronJob's pod that restores
    that folder of the claim, never retried; without it no restore Job; a path instead of a folder is refused."""
    assert "moe-restore" not in kind(docs, "Job")
    job = kind(rendered_docs(PROFILE, ["backup.restoreFrom=20261126T021700Z"]), "Job")["moe-restore"]
    pod = job["spec"]["template"]["spec"]
    assert (job["spec"]["backoffLimit"], pod["restartPolicy"]) == (0, "Never")
    container = pod["containers"][0]
    assert shlex.split(container["args"][0]) == ["python", "-m", "control_plane.ops.backup", "restore", "--from",
                                                 "/backups/20261126T021700Z"]
    cron = kind(docs, "CronJob")["moe-backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    same = ("image", "env", "envFrom", "volumeMounts", "securityContext")
    assert {k: container[k] for k in same} == {k: cron["containers"][0][k] for k in same}
    assert pod["volumes"] == cron["volumes"]
    with pytest.raises(AssertionError, match="restoreFrom"):
        rendered_docs(PROFILE, ["backup.restoreFrom=../etc"])


def test_the_migrations_run_as_a_hook_before_the_services(docs: list[dict[str, Any]]) -> None:
    job = kind(rendered_docs([]), "Job")["moe-pg-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "python -m moe_core.runtime.pg.migrate" in script and "python -m codex_lineage.migrate" in script
