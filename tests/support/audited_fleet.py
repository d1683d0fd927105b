"""A lean fleet for the audit journeys (lineage, admin console): gateway, control-plane, planner, expert-worker,
merger and codex-lineage as real processes, with their own topic namespace and their own audit schema in Postgres
(dropped afterwards), scripted models, every request planned by the scripted planner."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import scripted_env
from tests.support.audit_schema import drop_schema, migrate_schema, own_schema
from tests.support.fleet import Fleet
from tests.support.namespaces import new_namespace

SERVICES = ("gateway", "control-plane", "planner", "expert-worker", "merger", "codex-lineage")
LEAN = {"MOE_SEMANTIC_CACHE_ENABLED": "false",  # every journey is planned (no Chroma needed)
        "MOE_PLANNER_GRAPH_TASKS": "false"}  # no graph-rag in this fleet: the plans are the scripted ones


@dataclass
class AuditedFleet:
    fleet: Fleet
    env: dict[str, str]  # what the services share (MOE_*), without this process's environment
    schema: str
    keys: Path  # the fleet's own audit key pair and checkpoint file (audit-signing-key.pem, audit-public-key.pem)
    owner_dsn: str  # the audit store's owner (its migrator role): what the database owner can do


@contextmanager
def audited_fleet(infra: dict[str, str], scripted_url: str, prefix: str, gateway_workers: int = 1,
                  services: tuple[str, ...] = (), lean: bool = True, attempts: int = 2,
                  **extra: str) -> Iterator[AuditedFleet]:
    """Started and ready; `services`: more of the fleet's services (e.g. graph-rag, graph-ingest); `extra` adds or
    overrides environment variables; `lean=False`: the whole fleet (every service that starts by default, and
    `services`) with its own settings for the cache and the graph tasks (the chaos fleet); `attempts`: starts of a
    service that exits while starting (Fleet.start). codex-lineage gets a signing key of
    this fleet's own and the local timestamp authority (started if it is not running), checkpointing every
    second. The audit schema is made by its migrator role first; codex-lineage writes with its own role
    (SELECT and INSERT), the gateway's role (and the operator's, `moe`) may only read it."""
    from fleetlib import api, audit_key  # deploy/local (tests/conftest puts it on the path)

    api.ensure_up(["tsa"])
    namespace = new_namespace(prefix)
    schema = own_schema(namespace)
    keys = Path(tempfile.mkdtemp(prefix=f"audit-{namespace}-"))
    private, public = audit_key.ensure(keys / "audit-signing-key.pem", keys / "audit-public-key.pem")
    env = {
        "MOE_TOPIC_NAMESPACE": namespace,
        "MOE_AUDIT_SCHEMA": schema,
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_REQUEST_TIMEOUT_S": "45",
        "MOE_LOG_LEVEL": "INFO",
        **scripted_env(scripted_url),
        "MOE_ROUTER_ENABLED": "false",
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
        **(LEAN if lean else {}),
        "MOE_AUDIT_SIGNING_KEY": str(private),
        "MOE_AUDIT_PUBLIC_KEY": str(public),
        "MOE_AUDIT_KEYRING": str(keys / "audit-keyring.json"),  # made beside the key pair (audit_key.ensure)
        "MOE_AUDIT_TSA_URL": infra["tsa"],
        "MOE_AUDIT_TSA_CHAIN": infra["tsa-chain"],
        "MOE_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        "MOE_AUDIT_CHECKPOINT_FILE": str(keys / "checkpoints.jsonl"),
        **extra,
    }
    owner = infra["postgres-audit-migrator"]
    migrate_schema(env, owner)
    fleet = Fleet(env, gateway_workers=gateway_workers, extra=("codex-lineage", *services))
    for name in list(fleet.services):
        if lean and name not in SERVICES and name not in services:
            del fleet.services[name]
    fleet.services["codex-lineage"].env["MOE_AUDIT_WRITER_DSN"] = infra["postgres-codex-lineage"]
    fleet.services["codex-lineage"].env["MOE_POSTGRES_DSN"] = infra["postgres-codex-lineage"]
    # the console's data-health page asks codex-lineage's API
    fleet.services["control-plane"].env["MOE_CONSOLE_CODEX_LINEAGE_URL"] = fleet["codex-lineage"].url
    for name, service in fleet.services.items():  # the signing key is codex-lineage's alone
        if name != "codex-lineage":
            service.env.pop("MOE_AUDIT_SIGNING_KEY", None)
    try:
        try:
            fleet.start(attempts)
            yield AuditedFleet(fleet, env, schema, keys, owner)
        finally:
            fleet.stop()
    finally:
        drop_schema(owner, schema)
        shutil.rmtree(keys, ignore_errors=True)  # the fleet's signing key and checkpoint file
