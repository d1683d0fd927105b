"""Sections of the hand-written docs (and deployment files) that are generated from the code (`make schemas`, through
moe_tools.stage_docs) and checked for drift by tests/deploy/test_doc_sections.py. Each section sits between
markers in its document (moe_tools.docgen.markers); the prose around it stays the author's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_tools.docgen import (
    compose_lists,
    dashboard_lists,
    deploy_lists,
    helm_lists,
    local_doc,
    module_map,
    notes_doc,
    pg_doc,
    port_docs,
    retention_doc,
    seed_doc,
    seed_env_doc,
    settings_doc,
    topic_doc,
    vocab_doc,
)
from moe_tools.docgen.markers import Section, replaced

_REGISTRY = "moe_core.stage.registry and the declarations"
_PG = "moe_core.stage.registry and moe_core.runtime.pg.tables"

SECTIONS: tuple[Section, ...] = (
    Section("docs/settings.md", "settings", "the pydantic-settings classes of each service (moe_tools.docgen)",
            settings_doc.reference),
    Section("docs/seed-defaults.md", "seed-defaults",
            "the SEED_DEFAULTS rows beside the settings (moe_core.runtime.seed)",
            seed_doc.table),
    Section("docs/seed-defaults.md", "seed-variables", "moe_core.runtime.seed_env.SEED_VARIABLES",
            seed_env_doc.table),
    Section("libs/moe_core/runtime/fleet_variables.txt", "fleet-variables",
            "the settings classes of the fleet and the variables its code reads", seed_env_doc.variables, "hash"),
    Section("docs/audit.md", "retention", "moe_core.runtime.retention", retention_doc.table),
    Section("docs/knowledge-bundles.md", "vocabulary", "moe_core.knowledge.graph.vocab and policy/domain-keywords.yaml",
            vocab_doc.table),
    Section("docs/architecture.md", "module-map", "the packages' faces under libs/ and services/", module_map.table),
    Section("docs/architecture.md", "service-state", _REGISTRY, notes_doc.state),
    Section("docs/architecture.md", "redelivery", _REGISTRY, notes_doc.redelivery),
    Section("docs/topics.md", "topics", "moe_core.contracts.topics and the declarations", topic_doc.table),
    Section("docs/operations.md", "pg-tables", "moe_core.runtime.pg.tables", pg_doc.table),
    Section("deploy/local/README.md", "components", "deploy/local/fleetlib (registry, config)", local_doc.components),
    Section("docs/security.md", "broker-acls", "moe_core.provision.broker_acls", lambda repo: _broker_acls()),
    Section("docs/operations.md", "redis-keys", "moe_core.runtime.redis_keys", lambda repo: _redis_keys()),
    # deployment lists (moe_tools.docgen.deploy_lists)
    Section("compose/prometheus.yml", "scrape-jobs", "moe_core.stage.registry", deploy_lists.prometheus_jobs,
            "hash"),
    Section("grafana/alerts/moe-fleet.rules.yaml", "service-jobs", "moe_core.stage.registry", deploy_lists.alert_jobs,
            "hash"),
    Section("helm/moe-fleet/values.yaml", "topics", "moe_core.contracts.Topics", deploy_lists.helm_topics, "hash"),
    Section("helm/moe-fleet/values.yaml", "topic-retention", "moe_core.runtime.retention", deploy_lists.helm_retention,
            "hash"),
    Section("helm/moe-fleet/values.yaml", "strimzi-acls", "moe_core.provision.broker_acls and COMPACTED",
            deploy_lists.strimzi_acls,
            "hash"),
    Section("pyproject.toml", "package-folders", "moe_core.stage.registry", deploy_lists.setuptools_where, "hash"),
    Section("pyproject.toml", "mypy-path", "moe_core.stage.registry", deploy_lists.mypy_path, "hash"),
    Section("pyproject.toml", "first-party", "moe_core.stage.registry", deploy_lists.first_party, "hash"),
    Section("pyproject.toml", "import-contracts", "moe_core.stage.registry", deploy_lists.import_contracts, "hash"),
    Section("Makefile", "mypy-packages", "moe_core.stage.registry", deploy_lists.makefile_mypy, "hash"),
    # compose's and the chart's services (moe_tools.docgen.compose_lists, helm_lists)
    Section("compose/compose.yaml", "services", _REGISTRY, compose_lists.services, "hash"),
    Section("compose/compose.yaml", "kafka-principals", _REGISTRY, compose_lists.kafka_principals, "hash"),
    Section("compose/compose.yaml", "pg-passwords", _PG, compose_lists.pg_passwords, "hash"),
    Section("compose/compose.yaml", "producer-keys", _REGISTRY, compose_lists.producer_secrets, "hash"),
    Section("compose/init_secrets.py", "producer-topics", _REGISTRY, compose_lists.producer_topics, "hash"),
    Section("compose/.env", "service-ports", _REGISTRY, compose_lists.published_ports, "hash"),
    Section("compose/compose.observability.yaml", "services", _REGISTRY, compose_lists.observability, "hash"),
    Section("helm/moe-fleet/values.yaml", "services", _REGISTRY, helm_lists.components, "hash"),
    Section("helm/README.md", "secrets", _PG, helm_lists.secrets),
    # the services' ports in the docs (moe_tools.docgen.port_docs)
    Section("docs/operations.md", "service-ports", _REGISTRY, port_docs.operations_table),
    Section("README.md", "service-ports", _REGISTRY, port_docs.readme_ports),
    *(Section(f"services/{entry.name}/README.md", "http-port", _REGISTRY, partial(port_docs.service_readme, entry))
      for entry in stage_registry.FLEET),
)

# Files without comments to mark a section in: (path, the whole text -> the text as generated now).
REWRITES: tuple[tuple[str, Callable[[Path, str], str]], ...] = (
    (dashboard_lists.KNOWLEDGE_GRAPH, dashboard_lists.knowledge_graph),
)


def _redis_keys() -> str:
    from moe_core.runtime import redis_keys

    return redis_keys.markdown()


def _broker_acls() -> str:
    from moe_core.provision import broker_acls

    return broker_acls.markdown()


def expected(repo: Path, path: str) -> str:
    """The document as the generators write it now."""
    text = (repo / path).read_text()
    for section in SECTIONS:
        if section.path == path:
            text = replaced(text, section, section.render(repo))
    for rewritten, rewrite in REWRITES:
        if rewritten == path:
            text = rewrite(repo, text)
    return text


def paths() -> list[str]:
    """Every file with a generated part."""
    return list(dict.fromkeys([*(s.path for s in SECTIONS), *(p for p, _ in REWRITES)]))


def drift(repo: Path) -> list[str]:
    """The documents whose generated sections differ from what the code generates now."""
    return [path for path in paths() if (repo / path).read_text() != expected(repo, path)]


def write(repo: Path) -> None:
    for path in paths():
        text = expected(repo, path)
        if (repo / path).read_text() != text:
            (repo / path).write_text(text)
