"""The Helm chart, checked by the real helm (pinned, built by the install step) and kubeconform: lint,
every values profile rendered and validated against the Kubernetes schemas (and KEDA's CRDs), per-stage
autoscaling on consumer lag, traces configured for every component."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helm_examples import RENDER_CASES  # deploy/local: what `make schemas` renders

from moe_core.stage import registry as stage_registry
from tests.deploy import kube_schemas
from tests.deploy.deploy_support import (
    ANCHORS,
    CHART,
    EXAMPLES,
    KUBERNETES_VERSION,
    PROFILES,
    SERVICES,
    chart_values,
    deep_merge,
    fleet_topics,
    helm,
    helm_template,
    kubeconform,
    load_yaml,
    rendered_docs,
    run,
)

pytestmark = pytest.mark.unit
CRD_GROUPS = ("keda.sh", "kafka.strimzi.io", "monitoring.coreos.com")



def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        out.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return out


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_helm_lint_strict(profile: str) -> None:
    cmd = [helm(), "lint", "--strict", str(CHART), *ANCHORS]
    for f in PROFILES[profile]:
        cmd += ["-f", str(CHART / f)]
    result = run(cmd)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_rejects_bad_values() -> None:
    result = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "components.planner.port=not-a-port"])
    assert result.returncode != 0
    keda_on = ["keda.enabled=true", "components.expert-worker.autoscaling.enabled=true"]
    sets = [arg for kv in [*keda_on, "components.expert-worker.autoscaling.maxReplicas=12"] for arg in ("--set", kv)]
    too_many = run([helm(), "template", "moe", str(CHART), *ANCHORS, *sets])
    assert too_many.returncode != 0 and "exceeds kafka.topicPartitions" in too_many.stderr


def test_helm_default_render() -> None:
    kinds = by_kind(rendered_docs([]))
    components = {f"moe-{n}" for n in [*SERVICES, "llm", "opa"]}
    assert set(kinds["Deployment"]) == components
    assert set(kinds["Service"]) == components
    assert "ScaledObject" not in kinds, "KEDA objects need keda.enabled=true"
    for name, (module, port) in SERVICES.items():
        pod = kinds["Deployment"][f"moe-{name}"]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert container["command"] == ["python", "-m", module]
        assert env["MOE_SERVICE_NAME"]["value"] == env["OTEL_SERVICE_NAME"]["value"] == name
        assert env["MOE_HTTP_PORT"]["value"] == str(port)
        assert container["livenessProbe"]["httpGet"]["path"] == "/alive"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        # mcp: API keys; gap-healer: the graph's run history
        with_dsn = ("gateway", "control-plane", "codex-lineage", "mcp", "gap-healer")
        assert ("MOE_POSTGRES_DSN" in env) == (name in with_dsn)
    dashboards = kinds["ConfigMap"]["moe-dashboards"]["data"]
    assert json.loads(dashboards["fleet-overview.json"])["uid"] == "moe-fleet-overview"
    assert set(dashboards) == {p.name for p in (CHART / "dashboards").glob("*.json")}


def _secret_refs(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}


def test_passwords_and_keys_come_from_secrets_never_from_values_or_config_maps() -> None:
    kinds = by_kind(rendered_docs([]))
    config_text = json.dumps(kinds["ConfigMap"]["moe-env"]["data"])
    assert "MOE_REDIS_URL" not in config_text and "PASSWORD" not in config_text and "@" not in config_text
    for name in SERVICES:
        container = kinds["Deployment"][f"moe-{name}"]["spec"]["template"]["spec"]["containers"][0]
        refs = _secret_refs(container)
        assert refs["MOE_REDIS_URL"] == "moe-redis", name
        plain = {e["name"] for e in container["env"] if "value" in e}
        assert not plain & {"MOE_REDIS_URL", "MOE_POSTGRES_DSN", "MOE_NEO4J_PASSWORD", "MOE_MCP_SERVICE_KEY"}, name
    mcp = kinds["Deployment"]["moe-mcp"]["spec"]["template"]["spec"]["containers"][0]
    assert _secret_refs(mcp)["MOE_MCP_SERVICE_KEY"] == "moe-mcp"
    hosts = next(e["value"] for e in mcp["env"] if e["name"] == "MOE_MCP_ALLOWED_HOSTS")
    assert "*" not in hosts.replace(":*", "") and "moe-mcp.moe.svc:*" in hosts  # the Host guard stays on
    refused = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "redis.url=redis://:hunter2@redis:6379/0"])
    assert refused.returncode != 0, "a password in values must be refused"


def test_network_policies_let_only_the_gateway_in_from_outside() -> None:
    docs = rendered_docs([])
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    release = {"app.kubernetes.io/name": "moe-fleet", "app.kubernetes.io/instance": "moe"}
    deny = policies["moe-default-deny"]
    assert deny["podSelector"]["matchLabels"] == release and deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny  # selected and nothing allowed: everything is denied unless allowed below
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    for name, (_, port) in [*SERVICES.items(), ("llm", ("", 8081)), ("opa", ("", 8181))]:
        spec = policies[f"moe-{name}-ingress"]
        assert spec["podSelector"]["matchLabels"] == {**release, "app.kubernetes.io/component": name}
        rules = spec["ingress"]
        assert all(r["ports"] == [{"port": port, "protocol": "TCP"}] for r in rules), name
        if name == "gateway":
            assert rules[0] == {"ports": [{"port": port, "protocol": "TCP"}]}, "the gateway: open to all"
            continue
        # the console's Data health page: the control plane asks codex-lineage (and nothing else of the release)
        control_plane = [{"podSelector": {"matchLabels": {**release, "app.kubernetes.io/component": "control-plane"}}}]
        allowed = [monitoring, [{"podSelector": {"matchLabels": release}}]]
        # and the witness reads its list of logs (audit.witnessFrom, tests/deploy/test_helm_anchors.py)
        witness = load_yaml(CHART / "ci" / "anchors-values.yaml")["audit"]["witnessFrom"]
        allowed += [control_plane, witness] if name == "codex-lineage" else []
        callers = [[{"podSelector": {"matchLabels": {**release, "app.kubernetes.io/component": s.name}}}]
                   for s in stage_registry.FLEET if "MOE_OPA_URL" in s.deploy.compose_env]  # those with opaClient
        allowed += callers if name == "opa" else []
        for rule in rules:  # every other stage: never open to all, only the release or the monitoring stack
            assert rule.get("from"), f"{name} accepts anyone"
            assert rule["from"] in allowed, (name, rule)
        assert (control_plane in [r["from"] for r in rules]) == (name in ("codex-lineage", "opa")), name
        insiders = [r for r in rules if r["from"] == [{"podSelector": {"matchLabels": release}}]]
        assert bool(insiders) == (name in ("llm", "mcp")), name
        if name == "opa":  # its callers only (research, which talks to the internet, never reaches it)
            assert sorted(map(str, (r["from"] for r in rules if r["from"] != monitoring))) == sorted(map(str, callers))
    egress_on = [d["spec"] for d in rendered_docs([], ["networkPolicy.egress.enabled=true"])
                 if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "moe-egress"]
    assert egress_on and egress_on[0]["egress"][0]["ports"][0] == {"port": 53, "protocol": "UDP"}
    assert not [d for d in rendered_docs([], ["networkPolicy.enabled=false"]) if d["kind"] == "NetworkPolicy"]


def test_every_component_exports_traces_when_an_endpoint_is_set() -> None:
    endpoint = "http://otel-collector.observability:4317"
    kinds = by_kind(rendered_docs([], [f"otel.endpoint={endpoint}"]))
    env_maps = {n: cm for n, cm in kinds["ConfigMap"].items() if "OTEL_EXPORTER_OTLP_ENDPOINT" in cm.get("data", {})}
    assert [cm["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] for cm in env_maps.values()] == [endpoint]
    for name in SERVICES:
        container = kinds["Deployment"][f"moe-{name}"]["spec"]["template"]["spec"]["containers"][0]
        refs = {src["configMapRef"]["name"] for src in container.get("envFrom", []) if "configMapRef" in src}
        assert refs & set(env_maps), f"{name} does not get OTEL_EXPORTER_OTLP_ENDPOINT"
        assert not any(e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT" for e in container["env"]), "overridden per pod"


def test_helm_keda_render() -> None:
    values = deep_merge(chart_values(), load_yaml(CHART / "ci" / "keda-values.yaml"))
    docs = rendered_docs(["ci/keda-values.yaml"])
    scaled = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    triggers_auth = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
    expected = {n for n, c in values["components"].items() if c["autoscaling"]["enabled"] and c["autoscaling"]["topic"]}
    assert {"planner", "expert-worker", "merger"} <= expected
    assert {n.removeprefix("moe-") for n in scaled} == expected
    for name in expected:
        obj = scaled[f"moe-{name}"]
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert obj["spec"]["scaleTargetRef"]["name"] == f"moe-{name}"
        trigger = obj["spec"]["triggers"][0]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        auto = values["components"][name]["autoscaling"]
        assert meta["consumerGroup"] == name
        assert meta["topic"] == f"moe.{auto['topic']}.v1" and meta["topic"] in fleet_topics()
        assert meta["bootstrapServers"] == values["kafka"]["bootstrap"]
        assert meta["lagThreshold"] == str(auto["lagThreshold"])
        assert obj["spec"]["maxReplicaCount"] <= values["kafka"]["topicPartitions"]
        assert "replicas" not in deployments[f"moe-{name}"]["spec"], "KEDA owns the replica count"
        # the broker authenticates KEDA too: as the component's own principal (name and password as its pods)
        assert (meta["sasl"], meta["tls"]) == ("scram_sha512", "enable")
        auth = triggers_auth[trigger["authenticationRef"]["name"]]["spec"]
        container = deployments[f"moe-{name}"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert auth["env"] == [{"parameter": "username", "name": "MOE_KAFKA_USERNAME", "containerName": name}]
        assert env["MOE_KAFKA_USERNAME"]["value"] == name
        assert auth["secretTargetRef"] == [{"parameter": "password", **env["MOE_KAFKA_PASSWORD"]["valueFrom"][
            "secretKeyRef"]}]
        assert obj["spec"]["fallback"] == {"failureThreshold": 3, "replicas": auto["maxReplicas"]}, name
    assert len(expected) >= 11, "the profile scales every stage that consumes a topic"
    hpas = {d["metadata"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert hpas == {"moe-gateway", "moe-control-plane"}, "they consume no topic in a group: they scale on CPU"


def kubeconform_check(manifest: str, tmp_path: Path) -> tuple[int, str]:
    kube_schemas.ensure(KUBERNETES_VERSION)
    path = tmp_path / "rendered.yaml"
    path.write_text(manifest)
    cmd = [kubeconform(), "-strict", "-summary", "-output", "text", "-kubernetes-version", KUBERNETES_VERSION]
    for location in kube_schemas.location_templates():
        cmd += ["-schema-location", location]
    result = run([*cmd, str(path)])
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_validates_against_kubernetes_schemas(profile: str, tmp_path: Path) -> None:
    """kubeconform, strict, offline: every rendered object (KEDA's ScaledObjects included) has a schema."""
    code, out = kubeconform_check(helm_template(PROFILES[profile]), tmp_path)
    assert code == 0, out
    assert "Invalid: 0, Errors: 0, Skipped: 0" in out, out


def test_kubeconform_refuses_what_kubernetes_would(tmp_path: Path) -> None:
    """The validation can fail: an unknown field in a Deployment, a ScaledObject without its target, a KafkaTopic,
    a KafkaUser, a ServiceMonitor and a PrometheusRule each with a field or value their CRD refuses."""
    manifest = helm_template(["ci/keda-values.yaml"])
    bad_deploy = manifest.replace("kind: Deployment\nmetadata:\n", "kind: Deployment\nreplicaz: 2\nmetadata:\n", 1)
    assert bad_deploy != manifest
    code, out = kubeconform_check(bad_deploy, tmp_path)
    assert code != 0 and "replicaz" in out, out
    at = manifest.index("kind: ScaledObject\n")
    bad_scaled = manifest[:at] + manifest[at:].replace("  scaleTargetRef:\n", "  scaleTargetReff:\n", 1)
    assert bad_scaled != manifest
    code, out = kubeconform_check(bad_scaled, tmp_path)
    assert code != 0 and "ScaledObject" in out, out
    operator = helm_template(["ci/operator-values.yaml"])  # Strimzi's and the Prometheus Operator's CRDs too
    for kind, good, bad in [("KafkaTopic", "  partitions:", "  partitionz:"),
                            ("KafkaUser", "    type: scram-sha-512", "    type: scram-sha-999"),
                            ("ServiceMonitor", "  jobLabel:", "  jobLabell:"),
                            ("PrometheusRule", "  groups:", "  groupz:")]:
        at = operator.index(f"kind: {kind}\n")
        broken = operator[:at] + operator[at:].replace(good, bad, 1)
        assert broken != operator, kind
        code, out = kubeconform_check(broken, tmp_path)
        assert code != 0 and kind in out, (kind, out)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_render_validates_with_kubernetes_validate(profile: str) -> None:
    """A second, independent validator (kubernetes-validate's own resolver) for the upstream kinds."""
    import kubernetes_validate as kv

    for doc in rendered_docs(PROFILES[profile]):
        if doc["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue  # a CRD: checked by kubeconform against its own schema above
        try:
            kv.validate(doc, KUBERNETES_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


@pytest.mark.parametrize("example", sorted(RENDER_CASES))
def test_rendered_examples_are_up_to_date(example: str) -> None:
    rendered = helm_template(RENDER_CASES[example])
    path = EXAMPLES / example
    assert path.is_file(), f"missing {path}; run `make schemas`"
    assert path.read_text() == rendered, f"{path} is stale; run `make schemas`"


def test_chart_dashboards_are_the_grafana_folder() -> None:
    """One folder of dashboards: the chart's dashboards/ is a link to grafana/dashboards (Helm follows it)."""
    link = CHART / "dashboards"
    assert link.is_symlink() and link.resolve() == (CHART.parents[1] / "grafana" / "dashboards").resolve()


def test_opa_decides_over_the_repositorys_policies_and_the_control_plane_asks_it() -> None:
    """The `opa` component watches the policies ConfigMap, which holds policy/opa without its tests, byte for byte."""
    kinds = by_kind(rendered_docs([]))
    policies = kinds["ConfigMap"]["moe-opa-policies"]["data"]
    repo = CHART.parent.parent / "policy" / "opa"
    expected = {p.name: p.read_text().rstrip("\n") for p in repo.glob("*.rego") if not p.name.endswith("_test.rego")}
    assert policies == expected and "knowledge.rego" in policies
    pod = kinds["Deployment"]["moe-opa"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:3] == ["/opa", "run", "--server"] and "--watch" in container["command"]
    assert container["command"][-4:] == ["/policies", "--authentication=token", "--authorization=basic", "/authz"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["policies"] == "/policies" and volumes["policies"]["configMap"]["name"] == "moe-opa-policies"
    assert kinds["ConfigMap"]["moe-env"]["data"]["MOE_OPA_URL"] == "http://moe-opa:8181"
    cp = kinds["Deployment"]["moe-control-plane"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in cp["containers"][0]["env"]}
    assert env["MOE_OPA_POLICY_DIR"] == "/etc/moe/policy/opa"
    assert {m["mountPath"] for m in cp["containers"][0]["volumeMounts"]} >= {"/etc/moe/policy/opa"}
    elsewhere = rendered_docs([], ["opa.url=http://opa.policy:8181", "components.opa.enabled=false"])
    assert by_kind(elsewhere)["ConfigMap"]["moe-env"]["data"]["MOE_OPA_URL"] == "http://opa.policy:8181"
    assert "moe-opa" not in by_kind(elsewhere)["Deployment"]


def test_the_guardrail_rules_are_mounted_into_the_services_that_apply_them(tmp_path: Path) -> None:
    """The rules from values (default: policy/guardrails.yaml) in a ConfigMap, mounted as a directory (a change
    reaches the pods) into the gateway, planner, merger, critic, guardrail and control plane with MOE_GUARDRAILS_FILE; a
    ConfigMap of one's own replaces it; rules that are not YAML fail the render."""
    def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {name: d["spec"]["template"]["spec"] for name, d in by_kind(docs)["Deployment"].items()}

    docs = rendered_docs([])
    repo = CHART.parent.parent / "policy" / "guardrails.yaml"
    assert by_kind(docs)["ConfigMap"]["moe-guardrails"]["data"]["guardrails.yaml"] == repo.read_text().rstrip("\n")
    for name, pod in pods(docs).items():
        env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        guarded = name.removeprefix("moe-") in ("gateway", "planner", "merger", "critic", "guardrail", "control-plane")
        assert (env.get("MOE_GUARDRAILS_FILE") == "/etc/moe/guardrails/guardrails.yaml") is guarded, name
        assert (mounts.get("guardrails") == "/etc/moe/guardrails") is guarded, name
        if guarded:
            assert env["MOE_GUARDRAILS_RELOAD_S"] == "5"
            [volume] = [v for v in pod["volumes"] if v["name"] == "guardrails"]
            assert volume["configMap"]["name"] == "moe-guardrails" and "subPath" not in str(mounts)
    rules = "version: 1\ntenants:\n  acme:\n    input:\n      - {id: no-iban, detector: iban, action: redact}\n"
    values = tmp_path / "guardrails.yaml"
    values.write_text(json.dumps({"guardrails": {"rules": rules, "reloadSeconds": 2}}))
    mine = rendered_docs([str(values)])
    assert by_kind(mine)["ConfigMap"]["moe-guardrails"]["data"]["guardrails.yaml"] == rules.rstrip("\n")
    own = rendered_docs([], ["guardrails.existingConfigMap=acme-guardrails"])
    assert "moe-guardrails" not in by_kind(own)["ConfigMap"]
    [volume] = [v for v in pods(own)["moe-guardrail"]["volumes"] if v["name"] == "guardrails"]
    assert volume["configMap"]["name"] == "acme-guardrails"
    broken = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "guardrails.rules=tenants: [acme"])
    assert broken.returncode != 0 and "guardrails.rules is not YAML" in broken.stderr


def test_approved_guardrail_rules_are_written_to_a_volume_the_control_plane_alone_writes() -> None:
    """guardrails.applied: a ReadWriteMany claim, seeded once from the ConfigMap by the control plane's init
    container; the control plane mounts it writable, every other component of appliedBy read-only, and all read
    MOE_GUARDRAILS_FILE from it."""
    docs = rendered_docs([], ["guardrails.applied.enabled=true", "guardrails.applied.storageClassName=nfs"])
    claim = by_kind(docs)["PersistentVolumeClaim"]["moe-guardrails-applied"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"] == "nfs"
    writers = []
    for name, deployment in by_kind(docs)["Deployment"].items():
        pod = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        if "guardrails-applied" not in mounts:
            assert "MOE_GUARDRAILS_FILE" not in env, name
            continue
        assert env["MOE_GUARDRAILS_FILE"] == "/var/lib/moe/guardrails/guardrails.yaml", name
        if not mounts["guardrails-applied"]["readOnly"]:
            writers.append(name)
            [seed] = pod["initContainers"]
            assert "copyfile('/etc/moe/guardrails/guardrails.yaml'" in seed["command"][-1]
    assert writers == ["moe-control-plane"]
    off = rendered_docs([])
    assert "moe-guardrails-applied" not in by_kind(off).get("PersistentVolumeClaim", {})


def test_the_readme_creates_every_secret_key_the_chart_reads() -> None:
    """helm/README.md's `kubectl create secret` commands are what an operator runs before `helm install`: every
    (Secret, key) a default render reads must be among them (the control plane's Postgres key and the Kafka
    passwords were missing, so pods could not start)."""
    import re

    wanted: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict):
                wanted.add((ref["name"], ref["key"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in rendered_docs([]):
        walk(doc)
    readme = (CHART.parent / "README.md").read_text().replace("\\\n", " ")
    given = {(m.group(1), key) for m in re.finditer(r"kubectl create secret generic (\S+)([^\n]*)", readme)
             for key in re.findall(r"--from-literal=([\w-]+)=", m.group(2))}
    assert wanted and not wanted - given, sorted(wanted - given)


def test_no_pod_mounts_a_service_account_token_and_every_component_has_a_disruption_budget() -> None:
    """No component or job talks to the Kubernetes API, so none gets a token; every component loses at most one
    replica to a node drain (a single replica's drain is not held: maxUnavailable, never minAvailable)."""
    docs = rendered_docs(["ci/keda-values.yaml"])
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    pods += [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in docs if d["kind"] == "CronJob"]
    assert pods and all(p.get("automountServiceAccountToken") is False for p in pods)
    budgets = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    components = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert components and set(budgets) == components
    assert all(b["maxUnavailable"] == 1 and "minAvailable" not in b for b in budgets.values())
