"""The fleet's services, declared once: name, Python package, HTTP port and where its declaration lives (a
Stage on the stage runtime, or a ServiceDeclaration for a service with its own app: the edge, the control
plane, codex-lineage). Generated from this list by `make schemas`: docs/asyncapi.json, the service table in
docs/architecture.md, Prometheus's scrape jobs, pyproject's package paths and the Makefile's mypy packages
(moe_core.docgen.deploy_lists); checked against it (tests/deploy/test_stage_registry.py): the local
supervisor, compose's services, Helm's components and the Grafana dashboards.

Adding a service: a row here, its package under services/<name>/ with its declaration, then `make schemas`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moe_core.service_declaration import ServiceDeclaration
    from moe_core.stage import Stage



@dataclass(frozen=True)
class Service:
    name: str  # kebab-case: the folder, compose service, Helm component, OTEL service and consumer group
    package: str  # run as `python -m <package>`
    port: int
    stage: str | None = None  # "<module>:<attribute>" of its Stage or ServiceDeclaration
    role: str = ""  # one line for the service table when it has no declaration

    def declaration(self) -> Stage | ServiceDeclaration | None:
        if self.stage is None:
            return None
        module, _, attr = self.stage.partition(":")
        declared: Stage | ServiceDeclaration = getattr(importlib.import_module(module), attr)
        return declared


FLEET: tuple[Service, ...] = (
    Service("gateway", "gateway", 8002, "gateway.declaration:SERVICE"),
    Service("control-plane", "control_plane", 8110, "control_plane.declaration:SERVICE"),
    Service("planner", "planner", 8101, "planner.app:STAGE"),
    Service("expert-worker", "expert_worker", 8102, "expert_worker.app:STAGE"),
    Service("merger", "merger", 8103, "merger.app:STAGE"),
    Service("research", "research", 8104, "research.app:STAGE"),
    Service("critic", "critic", 8105, "critic.app:STAGE"),
    Service("mcp", "mcp_service", 8003, "mcp_service.app:STAGE"),
    Service("graph-rag", "graph_rag", 8106, "graph_rag.app:STAGE"),
    Service("graph-ingest", "graph_ingest", 8107, "graph_ingest.app:STAGE"),
    Service("gap-healer", "gap_healer", 8108, "gap_healer.app:STAGE"),
    Service("codex-lineage", "codex_lineage", 8109, "codex_lineage.declaration:SERVICE"),
)


def names() -> list[str]:
    return [s.name for s in FLEET]


def service(name: str) -> Service:
    for entry in FLEET:
        if entry.name == name:
            return entry
    raise KeyError(f"no service {name!r} in the registry; known: {', '.join(names())}")


def stages() -> list[Stage]:
    """Every Stage declaration of the fleet, the pipeline stages (imports the stage packages)."""
    from moe_core.stage import Stage

    return [d for d in declarations() if isinstance(d, Stage)]


def declarations() -> list[Stage | ServiceDeclaration]:
    """Every declaration of the fleet: the stages and the services with their own app."""
    return [d for d in (s.declaration() for s in FLEET) if d is not None]
