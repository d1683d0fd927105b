"""The chart's components for the registry's services (helm/moe-fleet/values.yaml, `components:`), written from
the registry (moe_core.stage.registry), each declaration (its stores, what it consumes) and its Deployment.
The other components of the chart (opa, llm) stay hand-written below the generated ones."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.runtime.pg import tables as pg_tables
from moe_core.runtime.retention import topic_label
from moe_core.stage.registry import Service
from moe_core.stage.spec import EVERY_TOPIC
from moe_tools.docgen import settings_catalog
from moe_tools.docgen.compose_lists import needs, uses_postgres
from moe_tools.docgen.yaml_lines import env_lines, flow

CODE = Path(stage_registry.__file__).resolve().parents[3]  # the checkout whose services/ the registry imports


def scaling_topic(entry: Service) -> str:
    """The topic whose consumer lag scales the component: its Deployment's, else the first it consumes."""
    if entry.deploy.autoscaling.topic is not None:
        return entry.deploy.autoscaling.topic
    declared = entry.declaration()
    consumed = [c.topic for c in declared.consumes if c.topic != EVERY_TOPIC] if declared is not None else []
    return topic_label(consumed[0]) if consumed else ""


def reads_domain_keywords(entry: Service) -> bool:
    """Whether the service's settings read the protected domains' file (MOE_DOMAIN_KEYWORDS): the chart mounts
    templates/domain-keywords.yaml into exactly those components. Read from the code that runs (the registry's
    checkout), like the declarations, not from the folder the lists are written to."""
    return "MOE_DOMAIN_KEYWORDS" in settings_catalog.service(entry.name, CODE)


def component(entry: Service) -> str:
    deploy, scaling = entry.deploy, entry.deploy.autoscaling
    lines = [f"  {entry.name}:" + (f"  # {deploy.note}" if deploy.note else ""), "    enabled: true",
             f"    module: {entry.package}", f"    replicas: {deploy.replicas}", f"    port: {entry.port}"]
    lines += ["    postgres: true"] if uses_postgres(entry) else []
    lines += ["    neo4j: true"] if "neo4j" in needs(entry) else []
    lines += ["    opaClient: true"] if "MOE_OPA_URL" in deploy.compose_env else []  # OPA admits only these
    lines += ["    domainKeywords: true"] if reads_domain_keywords(entry) else []
    lines += [f"    {key}: {flow(value)}" for key, value in deploy.helm.items()]
    env = deploy.env | deploy.helm_env
    lines += ["    env:", *env_lines(env, "      ")] if env else ["    env: {}"]
    topic = scaling_topic(entry)
    lines += ["    resources:" + (f"  # {deploy.resources_note}" if deploy.resources_note else ""),
              f"      requests: {{cpu: {deploy.cpu}, memory: {deploy.memory}}}",
              f"      limits: {{memory: {deploy.memory_limit}}}",
              "    autoscaling:", "      enabled: false", f"      minReplicas: {scaling.min}",
              f"      maxReplicas: {scaling.max}", f"      lagThreshold: {scaling.lag}",
              f"      topic: {flow(topic)}" + (f"  # {scaling.note}" if scaling.note else "")]
    lines += ["      targetCPUUtilizationPercentage: 75"] if not topic else []
    return "\n".join(lines)


def components(repo: Path) -> str:
    """Every registry service's component, in the registry's order."""
    return "\n\n".join(component(entry) for entry in stage_registry.FLEET)


def _continued(first: str, items: list[str], width: int = 112) -> list[str]:
    """A shell command's words over lines of at most `width` characters, each but the last ending in a backslash."""
    lines, line = [], first
    for item in items:
        if len(line) + 1 + len(item) > width:
            lines.append(line + " \\")
            line = "  " + item
        else:
            line += " " + item
    return [*lines, line]


def secrets(repo: Path) -> str:
    """helm/README.md: the `kubectl create secret` commands an operator runs before `helm install`, one Postgres DSN
    per service role (moe_core.runtime.pg.tables) and migration role, one Kafka SCRAM password per service."""
    dsn = "postgresql://{role}:...@postgres:5432/moe"
    pg = [(e.name, pg_tables.role_of(e.name)) for e in stage_registry.FLEET if uses_postgres(e)]
    pg += [("migrator", pg_tables.MIGRATOR_ROLE), ("audit-migrator", pg_tables.AUDIT_MIGRATOR_ROLE)]
    postgres = [f"--from-literal={key}={dsn.format(role=role)}" for key, role in pg]
    lines = ["```bash", *_continued("kubectl create secret generic moe-postgres", postgres, width=60)]
    lines[-1] += " \\"
    lines += ["  --from-literal=admin=postgresql://postgres:...@postgres:5432/moe"
              "        # with --set postgres.createRoles=true",
              "kubectl create secret generic moe-neo4j --from-literal=password=...",
              "kubectl create secret generic moe-redis --from-literal=url=redis://:...@redis:6379/0",
              'kubectl create secret generic moe-mcp --from-literal=service-key="$(openssl rand -base64 32)"',
              "# opa.auth (on by default): the bearer token OPA's API admits and its callers send (>= 32 characters)",
              'kubectl create secret generic moe-opa --from-literal=token="$(openssl rand -base64 32)"',
              "# kafka.auth (on by default): the broker's SCRAM passwords, the admin's and one per component "
              "(docs/security.md)",
              *_continued("kubectl create secret generic moe-kafka",
                          [f"--from-literal={name}=..." for name in ["admin", *stage_registry.names()]]),
              "# producerKeys (on by default): each component's own signing key and the list of the public keys "
              "(docs/audit.md)",
              "python -m moe_core.stage.producers keys/          # keys/<component>.pem, keys/producer-keys.json",
              "kubectl create configmap moe-producer-keys --from-file=producer-keys.json=keys/producer-keys.json",
              f"for c in {' '.join(stage_registry.names())}; do",
              '  kubectl create secret generic "moe-producer-key-$c" --from-file=producer-key.pem="keys/$c.pem"',
              "done",
              "```"]
    return "\n".join(lines)
