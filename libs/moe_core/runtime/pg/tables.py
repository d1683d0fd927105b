"""The declaration of every Postgres table (and view) of the fleet: one owner — the service whose migration
creates it — and, per service, exactly the privileges it uses (SELECT, INSERT, UPDATE, DELETE). Each service
logs in as its own role (`role_of`); the grants are generated from this declaration (moe_core.runtime.pg.grants), the
docs' table too (moe_tools.docgen.pg_doc), and tests/deploy checks the SQL of each service package against it.

Moving a use from one service to another is one line: the roles below name who does what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]
PRIVILEGES: tuple[Privilege, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE")
READ: frozenset[Privilege] = frozenset({"SELECT"})
APPEND: frozenset[Privilege] = frozenset({"SELECT", "INSERT"})
WRITE: frozenset[Privilege] = frozenset({"SELECT", "INSERT", "UPDATE"})
MANAGE: frozenset[Privilege] = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})

# Who does what (service names as in stage_registry).
EDGE = "gateway"  # checks API keys (its usage goes to the control plane over the usage topic)
ADMIN = "control-plane"  # keys and tenants, usage reports, knowledge imports, graph runs, the audit API
GRAPH_MAINTAINER = "gap-healer"  # the scheduled lint and heal runs
RECORDER = "codex-lineage"  # the audit record's only writer
TOOLS = "mcp"  # the precision tools' API checks keys

Store = Literal["fleet", "audit"]  # fleet: the public schema (moe_core.runtime.pg.migrate); audit: MOE_AUDIT_SCHEMA


@dataclass(frozen=True)
class PgTable:
    name: str
    owner: str  # the service whose migration creates it
    access: Mapping[str, frozenset[Privilege]]  # service -> privileges
    purpose: str
    store: Store = "fleet"
    view: bool = False

    def readers(self) -> list[str]:
        return sorted(s for s, p in self.access.items() if p == READ)

    def writers(self) -> list[str]:
        return sorted(s for s, p in self.access.items() if p != READ)


def uses(*pairs: tuple[str, frozenset[Privilege]]) -> Mapping[str, frozenset[Privilege]]:
    """service -> privileges; a service named twice (EDGE and ADMIN are both the gateway today) gets both."""
    out: dict[str, frozenset[Privilege]] = {}
    for service, privileges in pairs:
        out[service] = out.get(service, frozenset()) | privileges
    return out


TABLES: tuple[PgTable, ...] = (
    PgTable("api_keys", ADMIN, uses((ADMIN, WRITE), (EDGE, READ), (RECORDER, READ)),
            "API keys (SHA-256 hashes only), their role, tenants, expiry, models, limits"),
    PgTable("tenants", ADMIN, uses((ADMIN, WRITE), (EDGE, READ)), "tenants: name, limits, disabled"),
    PgTable("principals", ADMIN, uses((ADMIN, WRITE)),
            "people and service accounts: every key and console session belongs to one (OIDC subject for people)"),
    PgTable("expert_templates", ADMIN, uses((ADMIN, MANAGE)),
            "expert templates a tenant admin made (moe_core.llm.tenant_templates): tenant, name, models, "
            "who changed it"),
    PgTable("fleet_config", ADMIN, uses((ADMIN, WRITE)),
            "the fleet configuration changed in the console (servers, model assignment, client profiles): the "
            "overlay in force and its version"),
    PgTable("fleet_config_changes", ADMIN, uses((ADMIN, WRITE)),
            "every proposed configuration change: who, what, before and after, approvals, the version it made"),
    PgTable("api_keys_resolved", ADMIN, uses((ADMIN, READ), (EDGE, READ), (TOOLS, READ), (RECORDER, READ)),
            "a key with its tenants' limits and state (what a key check reads)", view=True),
    PgTable("key_principals", ADMIN, uses((ADMIN, READ), (EDGE, READ), (TOOLS, READ), (RECORDER, READ)),
            "whether a key's principal is disabled (what a key check reads beside api_keys_resolved)", view=True),
    PgTable("usage_daily", ADMIN, uses((ADMIN, WRITE)),
            "usage per day, tenant, key, mode and model (written from the edge's usage topic)"),
    PgTable("usage_requests", ADMIN, uses((ADMIN, APPEND)),
            "one row per settled request (charged once; written from the edge's usage topic)"),
    PgTable("knowledge_change_sets", ADMIN, uses((ADMIN, WRITE)),
            "knowledge imports: bundle, diff, status, decision"),
    PgTable("knowledge_approvals", ADMIN, uses((ADMIN, APPEND)), "one approval per change set and principal (and key)"),
    PgTable("guardrail_simulations", ADMIN, uses((ADMIN, APPEND)),
            "candidate guardrail rule files tried on recorded traffic: who, the rules, the counts per tenant"),
    PgTable("guardrail_proposals", ADMIN, uses((ADMIN, WRITE)),
            "a simulated candidate proposed for application, and the second person's decision"),
    PgTable("egress_policy_changes", ADMIN, uses((ADMIN, WRITE)),
            "candidate egress policies: the simulation on recorded decisions, the proposal, the second person's "
            "decision, the policy version it made"),
    PgTable("graph_runs", GRAPH_MAINTAINER, uses((GRAPH_MAINTAINER, WRITE), (ADMIN, READ)),
            "the graph's maintenance runs (lint, heal)"),
    PgTable("audit_log", RECORDER, uses((RECORDER, APPEND), (ADMIN, READ)),
            "the signed hash chain of every tenant (records and lineage events)", store="audit"),
    PgTable("audit_checkpoints", RECORDER, uses((RECORDER, APPEND), (ADMIN, READ)),
            "signed, timestamped checkpoints of the chains", store="audit"),
    PgTable("audit_records", RECORDER, uses((RECORDER, READ), (ADMIN, READ)),
            "the log's Kafka records", store="audit", view=True),
    PgTable("lineage_events", RECORDER, uses((RECORDER, READ), (ADMIN, READ)),
            "the log's OpenLineage events", store="audit", view=True),
)

MIGRATOR_ONLY = ("moe_migrations", "moe_schema_applied")  # the migrations' own bookkeeping: no service's
MIGRATOR_ROLE = "moe_migrator"  # owns the fleet store's tables; only migrates
AUDIT_MIGRATOR_ROLE = "moe_audit_migrator"  # owns the audit store (codex_lineage.migrate)


def role_of(service: str) -> str:
    """The Postgres role a service logs in as: moe_gateway, moe_gap_healer, moe_codex_lineage, ..."""
    return "moe_" + service.replace("-", "_")


def services() -> list[str]:
    """Every service that touches Postgres."""
    return sorted({s for t in TABLES for s in t.access})


def tables(store: Store | None = None) -> list[PgTable]:
    return [t for t in TABLES if store is None or t.store == store]


def table(name: str) -> PgTable:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(f"no Postgres table {name!r} is declared in moe_core.runtime.pg.tables")


def privileges(service: str, name: str) -> frozenset[Privilege]:
    """What `service` may do with table `name` (empty: nothing)."""
    return table(name).access.get(service, frozenset())
