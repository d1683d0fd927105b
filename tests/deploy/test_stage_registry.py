"""One declared list of services (moe_core.stage.registry): everything else is generated from it or reads it,
under the same name — the stage declarations and their settings, the generated docs (AsyncAPI, the service
table), pyproject and the Makefile, the local supervisor, compose/, helm/, Prometheus and the Grafana
dashboards. These tests read the generated files back as their tools do (test_doc_sections.py: they are what
`make schemas` writes now; test_new_service.py: a new row reaches every one of them)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Topics
from moe_core.stage.consumer import subscriber_title
from moe_core.stage.declaration import ServiceDeclaration
from moe_core.stage.spec import EVERY_TOPIC, Stage
from moe_tools import stage_docs

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FLEET = stage_registry.FLEET
NAMES = [s.name for s in FLEET]
STAGED = [(s, d) for s in FLEET if (d := s.declaration()) is not None]
TOPIC_FIELDS = set(Topics.__dataclass_fields__)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_names_ports_and_packages_are_unique() -> None:
    for values in (NAMES, [s.package for s in FLEET], [s.port for s in FLEET]):
        assert len(values) == len(set(values)), values
    for entry in FLEET:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", entry.name), entry.name


@pytest.mark.parametrize(("entry", "stage"), STAGED, ids=[s.name for s, _ in STAGED])
def test_each_declaration_is_its_registry_row(entry: stage_registry.Service,
                                              stage: Stage | ServiceDeclaration) -> None:
    assert stage.name == entry.name
    fields = stage.settings.model_fields
    assert fields["service_name"].default == entry.name  # metrics, traces and the consumer group use it
    assert fields["http_port"].default == entry.port
    assert stage.settings.model_config.get("env_prefix") == "MOE_"
    assert (REPO / "services" / entry.name / entry.package / "__main__.py").is_file()
    for policy in (getattr(stage, "memo", None),):  # a ServiceDeclaration has none
        if policy is not None:
            assert policy.ttl in fields, f"{entry.name}: memo ttl field {policy.ttl} does not exist"


@pytest.mark.parametrize(("entry", "stage"), STAGED, ids=[s.name for s, _ in STAGED])
def test_declared_topics_are_the_topics_the_code_uses(entry: stage_registry.Service,
                                                       stage: Stage | ServiceDeclaration) -> None:
    """What a stage publishes is declared: every topic its package names is consumed or declared
    published (or the dead-letter topic), and every declared topic is used."""
    used: set[str] = set()
    for path in (REPO / "services" / entry.name / entry.package).rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r"\btopics\.(\w+)\b", text)) & TOPIC_FIELDS
        if "for_task_kind(" in text:
            used |= {"tasks_expert", "tasks_mcp", "tasks_research", "tasks_graph"}
    consumed = {c.topic for c in stage.consumes}
    consumed |= TOPIC_FIELDS if "*" in consumed else set()
    undeclared = used - consumed - set(stage.publishes) - {"deadletter"}
    assert not undeclared, f"{entry.name} publishes to undeclared topics {sorted(undeclared)}"
    assert set(stage.publishes) <= used, f"{entry.name} declares topics it never names"


def test_generated_docs_match_the_declarations() -> None:
    assert stage_docs.drift(REPO) == [], "run `make schemas`"


def test_the_asyncapi_document_names_every_consumed_and_published_topic() -> None:
    document = json.loads((REPO / stage_docs.ASYNCAPI).read_text())
    channels = document["channels"]
    for entry, stage in STAGED:
        for consumes in stage.all_consumed():
            if consumes.topic == EVERY_TOPIC:  # one channel per topic
                assert all(f"{entry.name}:*:{t}" in channels for t in Topics.for_namespace("moe").all())
                continue
            channel = channels[subscriber_title(stage, consumes)]
            assert channel["address"] == getattr(Topics.for_namespace("moe"), consumes.topic)
        for topic in stage.publishes:
            assert f"{entry.name}:{topic}:publish" in channels
    schemas = document["components"]["schemas"]
    assert {"ChatRequest", "TaskResult", "Answer", "Cancel"} <= set(schemas)


def test_pyproject_and_makefile_cover_every_service() -> None:
    """Generated (moe_tools.docgen.deploy_lists; test_doc_sections fails when out of date): read back as the
    tools read them."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    where = pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
    mypy_path = pyproject["tool"]["mypy"]["mypy_path"].split(":")
    makefile = (REPO / "Makefile").read_text()
    packages = next(line for line in makefile.splitlines() if line.startswith("MYPY_PACKAGES := ")).split()
    assert "\t@.venv/bin/mypy $(MYPY_PACKAGES)" in makefile  # the lint target checks exactly those
    for entry in FLEET:
        assert f"services/{entry.name}" in where and f"services/{entry.name}" in mypy_path, entry.name
        assert entry.package in packages[packages.index("moe_audit_verify"):], entry.name


def test_local_supervisor_covers_every_service() -> None:
    """The supervisor reads the registry (fleetlib.config, services): every service a component, in the
    registry's order, on its port, moved by MOE_<NAME>_PORT."""
    from fleetlib import config, registry, services

    assert list(config.SERVICE_NAMES) == NAMES == registry.GROUPS["services"]
    endpoints = config.endpoints()
    for entry in FLEET:
        assert config.PORT_DEFAULTS[entry.name] == (f"MOE_{entry.name.upper().replace('-', '_')}_PORT", entry.port)
        assert services.SERVICES[entry.name][0] == entry.package, entry.name
        assert endpoints[entry.name].endswith(f":{config.port(entry.name)}")  # the default unless overridden
    assert set(services.SERVICES) == set(NAMES)


def test_compose_runs_every_service_under_its_name() -> None:
    compose = _yaml(REPO / "compose" / "compose.yaml")["services"]
    for entry in FLEET:
        svc = compose[entry.name]
        env = svc["environment"]
        assert svc["command"] == ["python", "-m", entry.package]
        assert env["MOE_SERVICE_NAME"] == env["OTEL_SERVICE_NAME"] == entry.name
        assert int(env["MOE_HTTP_PORT"]) == entry.port


def test_helm_has_a_component_per_service() -> None:
    components = _yaml(REPO / "helm" / "moe-fleet" / "values.yaml")["components"]
    for entry in FLEET:
        assert (components[entry.name]["module"], components[entry.name]["port"]) == (entry.package, entry.port)


def test_prometheus_scrapes_every_service() -> None:
    jobs = {j["job_name"]: j for j in _yaml(REPO / "compose" / "prometheus.yml")["scrape_configs"]}
    for entry in FLEET:
        sd = jobs[entry.name]["dns_sd_configs"][0]
        assert sd["names"] == [entry.name] and sd["port"] == entry.port


def test_grafana_dashboards_cover_every_stage() -> None:
    """Some dashboard covers every stage: its `service` variable is read from a metric every stage labels
    with its service name (the stage runtime's moe_stage_seconds) or lists every stage by name. A
    dashboard about a few services names only registry services (no stale or misspelt names)."""
    dashboards = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    stages = {entry.name for entry, _ in STAGED}
    covering = []
    for path in dashboards:
        text = path.read_text()
        for var in json.loads(text).get("templating", {}).get("list", []):
            if var.get("name") != "service":
                continue
            query = var.get("query", "")
            query = query.get("query", "") if isinstance(query, dict) else query
            if var["type"] == "query" and re.fullmatch(r"label_values\(moe_stage_seconds_\w+, service\)", query):
                covering.append(path.name)
            elif stages <= {o["value"] for o in var.get("options", [])} | set(str(query).split(",")):
                covering.append(path.name)
        for alternatives in re.findall(r'service=~\\"([a-z|-]+)\\"', text):
            assert set(alternatives.split("|")) <= set(NAMES), f"{path.name}: {alternatives}"
    assert covering, "no dashboard covers every stage"
