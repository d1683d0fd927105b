"""The lists the docs write by hand name what the code declares: services (moe_core.stage.registry) and
their ports, the local components (deploy/local/fleetlib), topics, modes, expert categories, precision
tools, relation types, dashboards and alert rules. Each list is found by its sentence or table; a list
that is no longer found fails, so rewording it means updating its check here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
import yaml

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Topics
from moe_core.contracts.experts import EXPERT_CATEGORIES
from moe_core.contracts.tools import TOOL_SPECS
from moe_core.knowledge.graph import ontology, vocab
from moe_core.llm.modes import DEFAULT_MODE, MODES
from moe_core.stage.spec import Stage
from moe_tools.docgen.retention_doc import topic_label
from tests.deploy.doc_support import REPO, fleetlib_config, read, tables

pytestmark = pytest.mark.unit

NAMES = [s.name for s in stage_registry.FLEET]
TOPIC_LABELS = [topic_label(t) for t in Topics.__dataclass_fields__]


def ontology_domains() -> list[str]:
    return sorted({e.domain for e in ontology.load().entities})


def listed(text: str) -> list[str]:
    """The items of an enumeration: its `code` spans, else its comma/"and"/slash-separated words."""
    quoted = re.findall(r"`([^`]+)`", text)
    if quoted:
        return quoted
    return [w.strip() for w in re.split(r",|\band\b|/", text) if w.strip()]


def found(path: str, pattern: str) -> str:
    match = re.search(pattern, read(path), re.S)
    assert match, f"{path} no longer says {pattern!r}: update this test with the sentence"
    return " ".join(match.group(1).split())


# (document, the list's sentence with the list as group 1, what it lists, in order?)
LISTS: list[tuple[str, str, Callable[[], list[str]], bool]] = [
    ("README.md", r"Model ids select a mode \((.+?)\);", lambda: [m.removeprefix(DEFAULT_MODE) or m for m in MODES],
     True),
    ("README.md", r"ontology \(\d+ entities with aliases, \d+ typed relations, ([a-z/]+)\)", ontology_domains, False),
    ("docs/architecture.md", r"\| \d+ topics: (.+?) \|", lambda: TOPIC_LABELS, False),
    ("docs/architecture.md", r"with aliases in the (.+?) domains", ontology_domains, False),
    ("docs/architecture.md", r"\(`vocab\.py`: (.+?)\), not a relationship type", lambda: [*vocab.RELATION_TYPES], True),
    ("services/expert-worker/README.md", r"each of the \d+ categories \((.+?)\)", lambda: [*EXPERT_CATEGORIES], True),
]


@pytest.mark.parametrize(("path", "pattern", "expected", "ordered"), LISTS, ids=[f"{p}:{r[:24]}" for p, r, *_ in LISTS])
def test_hand_written_lists_name_what_the_code_declares(path: str, pattern: str, expected: Callable[[], list[str]],
                                                          ordered: bool) -> None:
    text = found(path, pattern)
    items, want = listed(text), expected()
    assert (items if ordered else sorted(items)) == (want if ordered else sorted(want)), f"{path}: {text}"


def test_the_helm_chart_has_no_component_beyond_the_services_the_llm_and_opa() -> None:
    components = yaml.safe_load((REPO / "helm" / "moe-fleet" / "values.yaml").read_text())["components"]
    assert sorted(components) == sorted([*NAMES, "llm", "opa"])


STORES = {"redis": "Redis", "neo4j": "Neo4j"}  # a stage's needs that /ready checks (moe_core.stage.runtime)


def test_the_ports_tables_of_operations_cover_every_component_with_its_port() -> None:
    """The services' table is generated (moe_tools.docgen.port_docs), the infrastructure's hand-written: both
    state the supervisor's ports, and each stage's /ready checks the stores its declaration needs."""
    config = fleetlib_config()
    services, infra_table = (next(t for t in tables("docs/operations.md") if t.header[0] == first)
                             for first in ("service", "component"))
    rows = {r[0].split(" ")[0].lower().replace("local", "llm"): r for r in [*services.rows, *infra_table.rows]}
    infra = [c for c in config.PORT_DEFAULTS if c not in NAMES and "-" not in c]
    assert [r[0] for r in services.rows] == NAMES
    assert sorted(rows) == sorted([*NAMES, *infra])
    for name, row in rows.items():
        ports = [int(p) for p in re.findall(r"\b(\d{4,5})\b", row[1])]
        assert ports == [port for key, (_, port) in config.PORT_DEFAULTS.items()
                         if key == name or key.startswith(f"{name}-")], row
    for entry, stage in ((e, e.declaration()) for e in stage_registry.FLEET):
        if isinstance(stage, Stage):  # the stage runtime's /ready; a service with its own app states its own
            checked = re.search(r"`/ready` \(([^);]+)", rows[entry.name][2])
            assert checked, rows[entry.name]
            stores = [s for s in ("Kafka", "Redis", "Neo4j", "Postgres") if s in checked.group(1)]
            assert stores == ["Kafka", *(STORES[n] for n in stage.needs if n in STORES)], rows[entry.name]


def test_the_mcp_readme_lists_every_tool() -> None:
    table = next(t for t in tables("services/mcp/README.md") if t.header[0] == "tool")
    assert sorted(r[0].strip("`") for r in table.rows) == sorted(TOOL_SPECS)


def test_the_local_readme_lists_the_environment_fleetctl_hands_the_services() -> None:
    text = found("deploy/local/README.md", r"the infra endpoints as\s+(.+?),\s+plus")
    assert listed(text) == list(fleetlib_config().ENDPOINT_ENV)


def test_the_dashboard_and_alert_tables_of_operations_are_the_files() -> None:
    by_header = {tuple(t.header[:2]): t for t in tables("docs/operations.md")}
    dashboards = {(p.name, json.loads(p.read_text())["uid"]) for p in (REPO / "grafana" / "dashboards").glob("*.json")}
    rows = by_header[("file (uid)", "shows")].rows
    assert {tuple(re.findall(r"`([^`]+)`", r[0])) for r in rows} == dashboards
    rules = yaml.safe_load((REPO / "grafana" / "alerts" / "moe-fleet.rules.yaml").read_text())
    alerts = sorted(r["alert"] for group in rules["groups"] for r in group["rules"])
    assert sorted(r[0].strip("`") for r in by_header[("alert", "fires when")].rows) == alerts
