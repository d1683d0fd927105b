"""Deployment lists generated from the registry (moe_core.stage.registry) and the contracts, written between
`#` comment markers by `make schemas` (tests/deploy/test_doc_sections.py fails when one is out of date):
Prometheus's scrape jobs (compose/prometheus.yml) and the jobs MoEServiceDown watches (the alert rules), the
chart's topic names (helm/moe-fleet/values.yaml), the package paths of pyproject.toml (setuptools, mypy, ruff's
first-party list) and the Makefile's mypy packages. Adding a service is its registry row; adding a topic is its
Topics field. Compose's and the chart's services: moe_tools.docgen.compose_lists and helm_lists."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Topics
from moe_core.contracts.topics import COMPACTED
from moe_core.provision import broker_acls
from moe_core.runtime.retention import DEFAULT_RETENTION_DAYS, topic_label
from moe_core.stage.spec import EVERY_TOPIC

LIBS = ("moe_core", "moe_audit_verify", "moe_tools")  # the packages under libs/


def _folders() -> list[str]:
    return ["libs", *(f"services/{s.name}" for s in stage_registry.FLEET)]


def _packages() -> list[str]:
    return [*LIBS, *(s.package for s in stage_registry.FLEET)]


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def prometheus_jobs(repo: Path) -> str:
    """One scrape job per service, named like it; DNS discovery finds every replica."""
    jobs = [f"  - job_name: {s.name}\n    dns_sd_configs:\n      - names: [{s.name}]\n        type: A\n"
            f"        port: {s.port}" for s in stage_registry.FLEET]
    return "\n".join(jobs)


def alert_jobs(repo: Path) -> str:
    """MoEServiceDown's expression: the fleet's own scrape jobs (named like its services), not every target of a
    shared Prometheus."""
    lines: list[list[str]] = [[]]
    for s in stage_registry.FLEET:  # a few names a line (yamllint's 140 columns)
        if len("|".join([*lines[-1], s.name])) > 90:
            lines.append([])
        lines[-1].append(s.name)
    parts = [f'up{{job=~"{"|".join(names)}"}} == 0' for names in lines]
    return "        expr: >-\n" + "\n".join(f"          {'or ' if i else ''}{p}" for i, p in enumerate(parts))


def helm_topics(repo: Path) -> str:
    """The chart's topic names (`<topicNamespace>.<name>.v1`), in the contracts' order."""
    return "\n".join(f"    - {topic_label(field)}" for field in Topics.__dataclass_fields__)


def helm_retention(repo: Path) -> str:
    """The chart's topics.retentionDays: each topic's default days (moe_core.runtime.retention), by label."""
    return "\n".join(f"    {topic_label(kind)}: {days}" for kind, days in DEFAULT_RETENTION_DAYS.items())


def strimzi_acls(repo: Path) -> str:
    """Each principal's grants for the chart's KafkaUser resources (moe_core.provision.broker_acls), by topic label
    ("*": every topic of the namespace); the chart composes the names with its topic namespace."""
    def label(kind: str) -> str:
        return '"*"' if kind == EVERY_TOPIC else topic_label(kind)

    lines = ["  acls:"]
    for g in broker_acls.declared_grants():
        read = ", ".join(label(k) for k in g.consumes)
        write = ", ".join(label(k) for k in dict.fromkeys((*g.publishes, "deadletter")))
        extra = g.service in broker_acls.CONFIG_READERS
        lines += [f"    {g.service}:", f"      read: [{read}]", f"      write: [{write}]",
                  f"      group: {str(g.group).lower()}"] + (["      describeConfigs: true"] if extra else [])
    lines += ["  compacted:", *(f"    - {topic_label(kind)}" for kind in sorted(COMPACTED))]
    return "\n".join(lines)


def setuptools_where(repo: Path) -> str:
    return f"where = [{_quoted(_folders())}]"


def mypy_path(repo: Path) -> str:
    return f'mypy_path = "{":".join(_folders())}"'


def first_party(repo: Path) -> str:
    return f"known-first-party = [{_quoted([*_packages(), 'tests'])}]"


def makefile_mypy(repo: Path) -> str:
    return "MYPY_PACKAGES := " + " ".join(f"-p {p}" for p in _packages())


def import_contracts(repo: Path) -> str:
    """The import contracts `make lint` checks (import-linter): the layers of libs/ with the services on top,
    each service independent of the others; libs never import a service; nothing run in an image imports the
    build-time tools; the offline verifier imports nothing of the fleet's."""
    services = [s.package for s in stage_registry.FLEET]
    layers = [" | ".join(services), *LAYERS]
    lines = ["[tool.importlinter]", f"root_packages = [{_quoted([*LIBS, *services])}]", "",
             "[[tool.importlinter.contracts]]", 'name = "services -> stage -> domains -> runtime -> contracts"',
             'type = "layers"', "layers = [", *(f'  "{layer}",' for layer in layers), "]", "",
             "[[tool.importlinter.contracts]]", 'name = "libs never import a service"', 'type = "forbidden"',
             'source_modules = ["moe_core", "moe_tools", "moe_audit_verify"]',
             f"forbidden_modules = [{_quoted(services)}]", "",
             "[[tool.importlinter.contracts]]", 'name = "no service and no runtime code imports the build-time tools"',
             'type = "forbidden"', f"source_modules = [{_quoted(['moe_core', 'moe_audit_verify', *services])}]",
             'forbidden_modules = ["moe_tools"]', "",
             "[[tool.importlinter.contracts]]", 'name = "the offline verifier is importable on its own"',
             'type = "forbidden"', 'source_modules = ["moe_audit_verify"]', 'forbidden_modules = ["moe_core"]']
    return "\n".join(lines)


# libs/moe_core's layers under the services, highest first ("a | b": independent of each other)
LAYERS = ("moe_core.provision", "moe_core.stage", "moe_core.access", "moe_core.llm", "moe_core.policy",
          "moe_core.knowledge | moe_core.audit", "moe_core.runtime", "moe_core.contracts")
