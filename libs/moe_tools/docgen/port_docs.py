"""The services' ports in the docs, from the registry (moe_core.stage.registry) and the declarations: the
ports table of docs/operations.md, the list under README's configuration table and the `MOE_HTTP_PORT` line
of each service's README."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.stage.registry import Service
from moe_core.stage.spec import Stage

STORES = {"redis": "Redis", "postgres": "Postgres", "neo4j": "Neo4j"}  # what a /ready pings of its needs


def ready(entry: Service) -> str:
    """What its `/ready` checks: the row's words, else Kafka and the stores the declaration needs (the stage
    runtime pings Redis and Neo4j; a service with its own app, Postgres too)."""
    if entry.ready:
        return entry.ready
    declared = entry.declaration()
    needs = declared.needs if declared is not None else ()
    pinged = [STORES[n] for n in needs if n in STORES and (n != "postgres" or not isinstance(declared, Stage))]
    return " + ".join(["Kafka", *pinged])


def checks(entry: Service) -> str:
    text = f"`/alive`, `/ready` ({ready(entry)}), `/metrics`"
    return f"{text}; {entry.serves}" if entry.serves else text


def operations_table(repo: Path) -> str:
    lines = ["| service | port (`make up` moves it with) | check |", "|---|---|---|"]
    lines += [f"| {e.name} | {e.port} (`{e.port_variable()}`) | {checks(e)} |" for e in stage_registry.FLEET]
    return "\n".join(lines)


def readme_ports(repo: Path) -> str:
    ports = ", ".join(f"{e.name} {e.port}" for e in stage_registry.FLEET)
    return (f"Each service's `MOE_HTTP_PORT` (its default; `make up` moves one with `MOE_<NAME>_PORT`, e.g. "
            f"`{stage_registry.FLEET[0].port_variable()}`): {ports}.")


def service_readme(entry: Service, repo: Path) -> str:
    declared = entry.declaration()
    asyncapi = ", `/asyncapi` (FastStream's AsyncAPI document)" if isinstance(declared, Stage) else ""
    serves = f"; {entry.serves}" if entry.serves else ""
    return (f"HTTP: `MOE_HTTP_PORT` ({entry.port}; `make up` moves it with `{entry.port_variable()}`): `/alive`, "
            f"`/ready` ({ready(entry)}), `/metrics`{asyncapi}{serves}.")
