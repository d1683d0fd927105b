"""All components in start order, and the group names accepted on the command line."""

from __future__ import annotations

from . import kafka, neo4j, opa, postgres, prometheus, services, simple, tsa, witness
from .component import Component

INFRA: list[Component] = [kafka.COMPONENT, neo4j.COMPONENT, simple.REDIS, postgres.COMPONENT,
                          simple.CHROMA, simple.LLM, prometheus.COMPONENT, tsa.COMPONENT,
                          witness.COMPONENT, opa.COMPONENT]
SERVICES: list[Component] = services.COMPONENTS
ALL: list[Component] = INFRA + SERVICES
BY_NAME: dict[str, Component] = {c.name: c for c in ALL}
GROUPS: dict[str, list[str]] = {
    "infra": [c.name for c in INFRA],
    "services": [c.name for c in SERVICES],
    "all": [c.name for c in ALL],
}


def resolve(names: list[str] | None, default: str = "infra") -> list[Component]:
    """Expand group names, drop duplicates, keep the registry order (infra before services)."""
    wanted: set[str] = set()
    for name in names or [default]:
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in BY_NAME:
            wanted.add(name)
        else:
            choices = ", ".join([*GROUPS, *BY_NAME])
            raise SystemExit(f"fleetctl: unknown component {name!r} (choose from {choices})")
    return [c for c in ALL if c.name in wanted]
