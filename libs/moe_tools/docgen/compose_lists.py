"""compose/'s lists of services, written from the registry (moe_core.stage.registry), each service's
declaration (the stores it needs), its Postgres role (moe_core.runtime.pg.tables) and its Deployment: the services'
blocks of compose/compose.yaml, kafka-setup's principals, pg-migrate's role passwords and the matching
passwords in compose/.env."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.runtime.pg import tables as pg_tables
from moe_core.stage.registry import Service
from moe_tools.docgen.yaml_lines import env_lines, flow

_COMPLETED = {"kafka-setup", "pg-migrate"}  # one-shot jobs: waited for until they exit 0


def upper(name: str) -> str:
    return name.upper().replace("-", "_")


def required(var: str) -> str:
    """A secret compose refuses to start without, naming it and how to make it (compose/init_secrets.py finds every
    one by this message)."""
    return f"${{{var}:?{SECRET_MESSAGE}}}"


SECRET_MESSAGE = "missing secret (python3 compose/init_secrets.py makes it)"  # noqa: S105 -- compose names the variable


def uses_postgres(entry: Service) -> bool:
    """A service with its own Postgres role (moe_core.runtime.pg.tables declares what it reads or writes)."""
    return entry.name in pg_tables.services()


def needs(entry: Service) -> tuple[str, ...]:
    declared = entry.declaration()
    return tuple(declared.needs) if declared is not None else ()


def waits_for(entry: Service) -> tuple[str, ...]:
    """compose's depends_on: the broker and its set-up, then the stores the declaration needs."""
    if entry.deploy.waits_for is not None:
        return entry.deploy.waits_for
    wanted = needs(entry)
    out = ["kafka", "kafka-setup"]
    out += ["redis"] if "redis" in wanted else []
    out += ["neo4j"] if "neo4j" in wanted else []
    out += ["postgres", "pg-migrate"] if uses_postgres(entry) else []
    out += ["llm"] if "inference" in wanted else []
    return tuple(out)


def _environment(entry: Service) -> list[str]:
    var = f"KAFKA_PASSWORD_{upper(entry.name)}"
    env = {"MOE_SERVICE_NAME": entry.name,
           "MOE_KAFKA_USERNAME": f"{entry.name}  # its own principal: the ACLs of its declaration",
           "MOE_KAFKA_PASSWORD": required(var),
           "OTEL_SERVICE_NAME": entry.name,
           "MOE_PRODUCER_SIGNING_KEY": "/run/secrets/producer-key  # its own Ed25519 key: it signs what it publishes",
           "MOE_PRODUCER_KEYS": "/run/secrets/producer-keys  # every producer's public key and topics"}
    lines = ["    environment:", "      <<: *fleet-env", *env_lines(env, "      "),
             f"      MOE_HTTP_PORT: {entry.port}"]
    more: dict[str, str] = {}
    if uses_postgres(entry):
        more["MOE_POSTGRES_DSN"] = (f"postgresql://{pg_tables.role_of(entry.name)}:${{PG_{upper(entry.name)}_PASSWORD}}"
                                    "@postgres:5432/${POSTGRES_DB}")
    if "neo4j" in needs(entry):
        more |= {"MOE_NEO4J_URL": "bolt://neo4j:7687", "MOE_NEO4J_USER": "neo4j",
                 "MOE_NEO4J_PASSWORD": "${NEO4J_PASSWORD}"}
    more |= entry.deploy.env | entry.deploy.compose_env
    return lines + env_lines(more, "      ")


def service_block(entry: Service) -> str:
    deploy = entry.deploy
    lines = [f"  {entry.name}:" + (f"  # {deploy.note}" if deploy.note else ""), "    <<: *stage",
             f'    command: ["python", "-m", "{entry.package}"]', *_environment(entry)]
    if deploy.publish:
        host = "127.0.0.1:" if deploy.publish == "loopback" else ""
        lines += ["    ports:", f'      - "{host}${{{upper(entry.name)}_PORT}}:{entry.port}"']
    own_key = {"source": f"producer-key-{entry.name}", "target": "producer-key"}  # its own, like its Kafka password
    compose = {key: value for key, value in deploy.compose.items() if key != "secrets"}
    compose["secrets"] = [own_key, "producer-keys", *deploy.compose.get("secrets", [])]
    for key, value in compose.items():  # flow style; a long list one item per line
        long = isinstance(value, list) and len(f"    {key}: {flow(value)}") > 120
        items = [f"      - {flow(item)}" for item in value] if long else []
        lines += [f"    {key}:", *items] if long else [f"    {key}: {flow(value)}"]
    lines.append("    depends_on:")
    for name in waits_for(entry):
        condition = "service_completed_successfully" if name in _COMPLETED else "service_healthy"
        lines += [f"      {name}:", f"        condition: {condition}"]
    return "\n".join(lines)


def services(repo: Path) -> str:
    """Every registry service's block of compose/compose.yaml, in the registry's order."""
    return "\n\n".join(service_block(entry) for entry in stage_registry.FLEET)


PRODUCER_KEYS_DIR = "MOE_PRODUCER_KEYS_DIR"  # compose/init_secrets.py makes the keys and their list there


def producer_secrets(repo: Path) -> str:
    """The producers' keys as compose secrets: each service's own (mounted into it alone) and the list of them all."""
    folder = required(PRODUCER_KEYS_DIR)
    lines = ["  producer-keys:", f"    file: {folder}/producer-keys.json"]
    for entry in stage_registry.FLEET:
        lines += [f"  producer-key-{entry.name}:", f"    file: {folder}/{entry.name}.pem"]
    return "\n".join(lines)


def producer_topics(repo: Path) -> str:
    """compose/init_secrets.py's copy of what each service may publish (its declaration, plus dead letters): the
    producers' key list it writes (moe_core.stage.producers's format) without the fleet's packages."""
    from moe_core.stage.producers import declared_publishes

    return "\n".join(f"    {name!r}: {list(kinds)!r}," for name, kinds in declared_publishes().items())


def kafka_principals(repo: Path) -> str:
    """kafka-setup's SCRAM credentials: one principal per service (moe_core.provision.kafka_setup --principals-env)."""
    lines = []
    for entry in stage_registry.FLEET:
        var = f"KAFKA_PASSWORD_{upper(entry.name)}"
        lines.append(f"      MOE_KAFKA_PRINCIPAL_{upper(entry.name)}: {required(var)}")
    return "\n".join(lines)


def pg_passwords(repo: Path) -> str:
    """pg-migrate's passwords of the services' own roles (python -m moe_core.runtime.pg.roles)."""
    lines = []
    for entry in (e for e in stage_registry.FLEET if uses_postgres(e)):
        var = f"PG_{upper(entry.name)}_PASSWORD"
        lines.append(f"      MOE_PG_PASSWORD_{upper(pg_tables.role_of(entry.name))}: {required(var)}")
    return "\n".join(lines)


def published_ports(repo: Path) -> str:
    """compose/.env: the host port of each service compose publishes."""
    return "\n".join(f"{upper(e.name)}_PORT={e.port}" for e in stage_registry.FLEET if e.deploy.publish)




def observability(repo: Path) -> str:
    """compose/compose.observability.yaml: every service exports its traces to the layer's collector (`*otel`),
    with its Deployment's observability_env beside it."""
    lines = []
    for entry in stage_registry.FLEET:
        extra = entry.deploy.observability_env
        lines += [f"  {entry.name}:", "    environment: *otel"] if not extra else \
            [f"  {entry.name}:", "    environment:", "      <<: *otel", *env_lines(extra, "      ")]
    return "\n".join(lines)
