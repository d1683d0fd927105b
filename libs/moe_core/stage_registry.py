"""The fleet's services, declared once: name, Python package, HTTP port and (for a stage on the stage
runtime) where its Stage declaration lives. The local supervisor, compose/, helm/, Prometheus, the Grafana
dashboards, docs/asyncapi.json and the service table in docs/architecture.md are generated from this list
or checked against it (tests/deploy/test_stage_registry.py).

Adding a stage: a row here, its package under services/<name>/, then `make schemas`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moe_core.stage import Stage


@dataclass(frozen=True)
class Service:
    name: str  # kebab-case: the folder, compose service, Helm component, OTEL service and consumer group
    package: str  # run as `python -m <package>`
    port: int
    stage: str | None = None  # "<module>:<attribute>" of its Stage declaration; None: its own app
    role: str = ""  # one line for the service table when it has no Stage declaration

    def declaration(self) -> Stage | None:
        if self.stage is None:
            return None
        module, _, attr = self.stage.partition(":")
        declared: Stage = getattr(importlib.import_module(module), attr)
        return declared


FLEET: tuple[Service, ...] = (
    Service("gateway", "gateway", 8002, role="OpenAI- and Anthropic-compatible API: requests in, answers and "
            "progress out; keys, audit and the admin API in Postgres"),
    Service("planner", "planner", 8101, "planner.app:STAGE"),
    Service("expert-worker", "expert_worker", 8102, "expert_worker.app:STAGE"),
    Service("merger", "merger", 8103, "merger.app:STAGE"),
    Service("research", "research", 8104, "research.app:STAGE"),
    Service("critic", "critic", 8105, "critic.app:STAGE"),
    Service("mcp", "mcp_service", 8003, "mcp_service.app:STAGE"),
    Service("graph-rag", "graph_rag", 8106, "graph_rag.app:STAGE"),
    Service("graph-ingest", "graph_ingest", 8107, "graph_ingest.app:STAGE"),
    Service("gap-healer", "gap_healer", 8108, "gap_healer.app:STAGE"),
    Service("codex-lineage", "codex_lineage", 8109, role="Every topic (own group) -> the hash-chained audit "
            "store and OpenLineage runs in Postgres; POST /api/v1/lineage; the replay command"),
)


def names() -> list[str]:
    return [s.name for s in FLEET]


def service(name: str) -> Service:
    for entry in FLEET:
        if entry.name == name:
            return entry
    raise KeyError(f"no service {name!r} in the registry; known: {', '.join(names())}")


def stages() -> list[Stage]:
    """Every Stage declaration of the fleet (imports the stage packages)."""
    return [d for d in (s.declaration() for s in FLEET) if d is not None]
