"""The broker's ACLs, generated from the stage declarations: each service's principal (`User:<service>`; in
another topic namespace `User:<service>.<namespace>`, like its consumer group, so a test fleet's principals
never share a credential with the fleet's) may
read exactly the topics it consumes (and use its own consumer group) and write exactly the topics it
publishes plus the dead-letter topic; nothing else (the broker runs with allow.everyone.if.no.acl.found=false).

- consumed topic: READ and DESCRIBE (a consumer of every topic: the namespace's prefix);
- group consumption: READ and DESCRIBE on the consumer group (the service's group_id in that namespace);
- published topic, dead-letter topic: WRITE and DESCRIBE. Idempotent producers need no cluster permission
  since Kafka 3.0 (KIP-679: WRITE on a topic implies it).
Topic creation and retention are the admin principal's (fleetctl, the chart's topics Job, compose's
kafka-setup): services run with MOE_KAFKA_CREATE_TOPICS=false.

    python -m moe_core.provision.broker_acls [--namespace moe] [--markdown]      (print the ACLs)
Applied (with the topics and the principals' SCRAM credentials) by `python -m moe_core.provision.kafka_setup`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Literal

import moe_core.stage.registry as stage_registry
from moe_core.contracts import Topics
from moe_core.stage.spec import EVERY_TOPIC

Resource = Literal["topic", "group"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "describe", "describe_configs"]

# Beyond the topics a declaration names: codex-lineage's compliance checks read every topic's configuration
# (retention, size limits, compaction: codex_lineage.compliance.sources), i.e. DescribeConfigs on the namespace.
CONFIG_READERS = frozenset({"codex-lineage"})


@dataclass(frozen=True, order=True)
class Acl:
    principal: str  # User:<service>
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


@dataclass(frozen=True)
class Grants:
    """What one service does with the broker (from its declaration)."""

    service: str
    consumes: tuple[str, ...]  # topic kinds (Topics fields) or EVERY_TOPIC
    publishes: tuple[str, ...]
    group: bool  # consumes in its consumer group (commits offsets)


def declared_grants() -> list[Grants]:
    """Every service's grants, from its declaration (a Stage or a ServiceDeclaration)."""
    out: list[Grants] = []
    for entry in stage_registry.FLEET:
        stage = entry.declaration()
        if stage is not None:
            consumed = stage.all_consumed()
            read = [c.topic for c in consumed] + list(getattr(stage, "reads", ()))  # a service's read-backs too
            out.append(Grants(entry.name, tuple(dict.fromkeys(read)), stage.publishes,
                              any(c.group for c in consumed)))
        else:
            raise ValueError(f"service {entry.name} has no declaration (moe_core.stage.registry)")
    return out


def group_id(service: str, namespace: str) -> str:
    """The consumer group of a service in a namespace (as FleetSettings.group_id); also its principal's name."""
    return service if namespace == "moe" else f"{service}.{namespace}"


principal_name = group_id


def service_acls(grants: Grants, namespace: str = "moe") -> list[Acl]:
    topics = Topics.for_namespace(namespace)
    who = f"User:{principal_name(grants.service, namespace)}"
    acls: set[Acl] = set()
    for kind in grants.consumes:
        name, pattern = (f"{namespace}.", "prefixed") if kind == EVERY_TOPIC else (getattr(topics, kind), "literal")
        acls |= {Acl(who, "topic", name, pattern, op) for op in ("read", "describe")}  # type: ignore[arg-type]
    if grants.group:
        acls |= {Acl(who, "group", group_id(grants.service, namespace), "literal", op) for op in ("read", "describe")}
    for kind in (*grants.publishes, "deadletter"):
        acls |= {Acl(who, "topic", getattr(topics, kind), "literal", op) for op in ("write", "describe")}
    if grants.service in CONFIG_READERS:
        acls.add(Acl(who, "topic", f"{namespace}.", "prefixed", "describe_configs"))
    return sorted(acls)


def fleet_acls(namespace: str = "moe") -> list[Acl]:
    """Every service principal's ACLs in a topic namespace."""
    return [acl for grants in declared_grants() for acl in service_acls(grants, namespace)]


def principals(namespace: str = "moe") -> list[str]:
    """The service principals' user names in a namespace (one SCRAM credential each)."""
    return [principal_name(g.service, namespace) for g in declared_grants()]


def markdown(namespace: str = "moe") -> str:
    """The table in docs/security.md (generated; tests/deploy checks it)."""
    lines = ["| principal | reads (topics) | writes (topics) | consumer group |", "|---|---|---|---|"]
    for grants in declared_grants():
        acls = service_acls(grants, namespace)
        reads = sorted({a.name + ("*" if a.pattern == "prefixed" else "") for a in acls
                        if a.resource == "topic" and a.operation == "read"})
        writes = sorted({a.name for a in acls if a.resource == "topic" and a.operation == "write"})
        group = f"`{group_id(grants.service, namespace)}`" if grants.group else "—"
        who = principal_name(grants.service, namespace)
        lines.append(f"| `User:{who}` | {', '.join(f'`{t}`' for t in reads) or '—'} | "
                     f"{', '.join(f'`{t}`' for t in writes)} | {group} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m moe_core.provision.broker_acls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="moe")
    parser.add_argument("--markdown", action="store_true", help="the principals table (docs/security.md)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(args.namespace))
    else:
        print(json.dumps([asdict(a) for a in fleet_acls(args.namespace)], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
