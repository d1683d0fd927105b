"""The single place for paths, ports and endpoints of the local fleet.

Every port can be overridden by an environment variable; endpoints are derived from the ports.
"""

from __future__ import annotations

import os
from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.runtime.pg import tables as pg_tables

HERE = Path(__file__).resolve().parent  # deploy/local/fleetlib
LOCAL = HERE.parent  # deploy/local
REPO = LOCAL.parent.parent
# what `make install` put there (jars under lib/). Resolved: a .data that links to another folder (another disk,
# another clone's) names its processes by the folder itself, as they were started, so a checkout reached through the
# link still finds them running (unresolved, it took them for strangers and dropped their pid files)
INSTALLED = (REPO / ".data").resolve()
DATA = Path(os.environ.get("MOE_DATA_DIR") or INSTALLED).resolve()  # state of the running stores (override: throwaway)
LOGS = DATA / "logs"
# A component's log past this size is set aside as <name>.log.1 (the one before is dropped) when it starts again
LOG_ROTATE_BYTES = int(float(os.environ.get("MOE_FLEET_LOG_ROTATE_MB", "64")) * 1024 * 1024)
RUN = DATA / "run"
LIB = INSTALLED / "lib"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
HOST = "127.0.0.1"

# name -> (environment variable, default port)
PORT_DEFAULTS: dict[str, tuple[str, int]] = {
    "kafka": ("MOE_KAFKA_PORT", 9092),
    "kafka-controller": ("MOE_KAFKA_CONTROLLER_PORT", 19093),
    "kafka-tls": ("MOE_KAFKA_TLS_PORT", 9094),
    "neo4j": ("MOE_NEO4J_BOLT_PORT", 7687),
    "neo4j-http": ("MOE_NEO4J_HTTP_PORT", 7474),
    "redis": ("MOE_REDIS_PORT", 6380),
    "postgres": ("MOE_POSTGRES_PORT", 5433),
    "chroma": ("MOE_CHROMA_PORT", 8000),
    "llm": ("MOE_LLM_PORT", 8081),
    # the fleet's services: their registry rows (moe_core.stage.registry), moved by MOE_<NAME>_PORT
    **{s.name: (s.port_variable(), s.port) for s in stage_registry.FLEET},
    "prometheus": ("MOE_PROMETHEUS_PORT", 9090),
    "tsa": ("MOE_TSA_PORT", 8190),
    "witness": ("MOE_WITNESS_PORT", 8191),
    "opa": ("MOE_OPA_PORT", 8181),
}

SERVICE_NAMES = tuple(stage_registry.names())  # the fleet's services, in the registry's (start) order
LLM_MODEL_ALIAS = "smollm2-135m"
POSTGRES_USER = "moe"  # the operator's role (replay, keys, psql): a member of the fleet store's migrator
POSTGRES_DB = "moe"
# Least privilege (issue 24): the stores' owners, which only migrate, and each service's own role with exactly
# the grants moe_core.runtime.pg.tables declares (moe_gateway, moe_mcp, moe_gap_healer, moe_codex_lineage, ...).
MIGRATOR_ROLE = pg_tables.MIGRATOR_ROLE
AUDIT_MIGRATOR_ROLE = pg_tables.AUDIT_MIGRATOR_ROLE
AUDIT_READER_ROLE = "moe_audit_reader"  # `make replay`'s: SELECT on the audit store, nothing else (local fleet)
CODEX_LINEAGE_ROLE = pg_tables.role_of("codex-lineage")
PG_SERVICES = tuple(pg_tables.services())  # the services that touch Postgres, each with its own role


def service_role(service: str) -> str:
    return pg_tables.role_of(service)


def port(name: str) -> int:
    var, default = PORT_DEFAULTS[name]
    return int(os.environ.get(var, default))


def endpoints() -> dict[str, str]:
    """Client-side addresses of the infrastructure (and services), computed from the current env."""
    from . import secrets  # passwords exist only for stores initialised with one (fleetlib.secrets)

    redis_pw, pg_pw, neo4j_pw = secrets.get("redis"), secrets.get("postgres"), secrets.get("neo4j")

    def postgres(role: str, password: str | None) -> str:
        return f"postgresql://{role}{f':{password}' if password else ''}@{HOST}:{port('postgres')}/{POSTGRES_DB}"

    eps = {
        "kafka": f"{HOST}:{port('kafka')}",
        # SASL/SCRAM (fleetlib.kafka): every client names its principal; the admin (a super user) is fleetctl's
        # and the tests'; each service has its own (services.service_env)
        "kafka-security-protocol": "SASL_PLAINTEXT",
        # the same principals over TLS (SASL_SSL), verified with the machine's own CA (fleetlib.kafka_tls)
        "kafka-tls": f"{HOST}:{port('kafka-tls')}",
        "kafka-ca-file": str(DATA / "kafka" / "tls" / "ca.pem"),
        "kafka-admin-user": "admin",
        "kafka-admin-password": secrets.get("kafka-admin") or "",
        "redis": f"redis://{f':{redis_pw}@' if redis_pw else ''}{HOST}:{port('redis')}/0",
        "postgres": postgres(POSTGRES_USER, pg_pw),
        "postgres-audit-migrator": postgres(AUDIT_MIGRATOR_ROLE, secrets.get(AUDIT_MIGRATOR_ROLE)),
        "postgres-audit-reader": postgres(AUDIT_READER_ROLE, secrets.get(AUDIT_READER_ROLE)),
        "postgres-migrator": postgres(MIGRATOR_ROLE, secrets.get(MIGRATOR_ROLE)),
        **{f"postgres-{s}": postgres(service_role(s), secrets.get(service_role(s))) for s in PG_SERVICES},
        "neo4j": f"bolt://{HOST}:{port('neo4j')}",
        "neo4j-user": "neo4j" if neo4j_pw else "",
        "neo4j-password": neo4j_pw or "",
        "neo4j-http": f"http://{HOST}:{port('neo4j-http')}",
        "chroma": f"http://{HOST}:{port('chroma')}",
        "llm": f"http://{HOST}:{port('llm')}/v1",
        "llm-model": LLM_MODEL_ALIAS,
        "prometheus": f"http://{HOST}:{port('prometheus')}",
        # the audit record's anchoring: the timestamp authority, its chain and codex-lineage's public key
        "tsa": f"http://{HOST}:{port('tsa')}/api/v1/timestamp",
        "tsa-chain": str(DATA / "tsa" / "tsa-chain.pem"),
        "witness": f"http://{HOST}:{port('witness')}",
        "witness-key": str(DATA / "witness" / "witness.vkey"),
        "audit-public-key": str(DATA / "codex-lineage" / "audit-public-key.pem"),
        "audit-keyring": str(DATA / "codex-lineage" / "audit-keyring.json"),
        # the control plane's policy decisions (Open Policy Agent over policy/opa) and the files it watches
        "opa": f"http://{HOST}:{port('opa')}",
        "opa-policy-dir": str(REPO / "policy" / "opa"),
        "opa-binary": str(DATA / "bin" / "opa"),  # `opa check` in the control plane's policy report
    }
    for svc in SERVICE_NAMES:
        eps[svc] = f"http://{HOST}:{port(svc)}"
    return eps


# Environment handed to the services (defaults; .data/fleet.env and then os.environ win).
ENDPOINT_ENV = {
    "MOE_KAFKA_BOOTSTRAP": "kafka",
    "MOE_KAFKA_SECURITY_PROTOCOL": "kafka-security-protocol",
    "MOE_REDIS_URL": "redis",
    "MOE_POSTGRES_DSN": "postgres",
    "MOE_NEO4J_URI": "neo4j",
    "MOE_NEO4J_USER": "neo4j-user",
    "MOE_NEO4J_PASSWORD": "neo4j-password",
    "MOE_CHROMA_URL": "chroma",
    "MOE_LOCAL_LLM_URL": "llm",
    "MOE_LOCAL_LLM_MODEL": "llm-model",
    "MOE_PROMETHEUS_URL": "prometheus",  # the control plane's GET /v1/admin/providers: latency percentiles
    "MOE_AUDIT_TSA_URL": "tsa",
    "MOE_AUDIT_TSA_CHAIN": "tsa-chain",
    "MOE_AUDIT_PUBLIC_KEY": "audit-public-key",
    "MOE_AUDIT_WITNESS_URL": "witness",
    "MOE_AUDIT_WITNESS_KEY": "witness-key",
    "MOE_AUDIT_KEYRING": "audit-keyring",
    "MOE_OPA_URL": "opa",
    "MOE_OPA_POLICY_DIR": "opa-policy-dir",
    "MOE_OPA_BINARY": "opa-binary",
}


def kafka_admin_env() -> dict[str, str]:
    """The Kafka admin principal's client settings (MOE_KAFKA_*): fleetctl's set-up, operator tools, tests."""
    eps = endpoints()
    return {"MOE_KAFKA_BOOTSTRAP": eps["kafka"], "MOE_KAFKA_SECURITY_PROTOCOL": eps["kafka-security-protocol"],
            "MOE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "MOE_KAFKA_USERNAME": eps["kafka-admin-user"],
            "MOE_KAFKA_PASSWORD": eps["kafka-admin-password"]}


def log_path(name: str) -> Path:
    return LOGS / f"{name}.log"


def pid_path(name: str) -> Path:
    return RUN / f"{name}.pid"


FLEET_ENV = DATA / "fleet.env"


def read_env_file() -> dict[str, str]:
    """.data/fleet.env's `KEY=VALUE` lines: the operator's overrides, for the services and the embedded LLM."""
    out: dict[str, str] = {}
    if FLEET_ENV.is_file():
        for line in FLEET_ENV.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.removeprefix("export ").split("=", 1)
                out[key.strip()] = value.strip().strip("'\"")
    return out
