"""The fleet's services, declared once: name, Python package, HTTP port, where its declaration lives (a
Stage on the stage runtime, or a ServiceDeclaration for a service with its own app: the edge, the control
plane, codex-lineage) and how it is deployed beyond what the declaration says (moe_core.stage.deployment).

Generated from these rows and the declarations by `make schemas` (moe_tools.stage_docs, moe_tools.docgen):
docs/asyncapi.json, the service table of docs/architecture.md, compose's services and passwords, the chart's
components, Prometheus's scrape jobs, pyproject's package paths, the Makefile's mypy packages, the ports
tables of the docs and the dashboards' service lists. The local supervisor (deploy/local/fleetlib) reads them.

Adding a service: its folder services/<name>/ (its package with its declaration, its README) and a row here,
then `make schemas`, which also installs the new package (tests/deploy/test_new_service.py does exactly that in a
copy of the repository and runs the docs' and deployment checks there)."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from moe_core.stage.deployment import Autoscaling, Deployment

if TYPE_CHECKING:
    from moe_core.stage.declaration import ServiceDeclaration
    from moe_core.stage.spec import Stage



@dataclass(frozen=True)
class Service:
    name: str  # kebab-case: the folder, compose service, Helm component, OTEL service and consumer group
    package: str  # run as `python -m <package>`
    port: int
    stage: str | None = None  # "<module>:<attribute>" of its Stage or ServiceDeclaration
    role: str = ""  # one line for the service table when it has no declaration
    ready: str = ""  # what its `/ready` checks, in words; "" = Kafka and the stores its Stage needs
    serves: str = ""  # what it serves besides /alive, /ready and /metrics (the docs' ports table)
    deploy: Deployment = field(default_factory=Deployment)  # compose and Helm beyond the declaration

    def port_variable(self) -> str:
        """The variable that moves its port in the local fleet (`make up`) and, when published, in compose."""
        return f"MOE_{self.name.upper().replace('-', '_')}_PORT"

    def declaration(self) -> Stage | ServiceDeclaration | None:
        if self.stage is None:
            return None
        module, _, attr = self.stage.partition(":")
        declared: Stage | ServiceDeclaration = getattr(_import(module, self.name), attr)
        return declared


def _import(module: str, name: str) -> ModuleType:
    """A declaration's module. A service added a moment ago is not installed yet (the editable install learns its
    folder from pyproject, which `make schemas` writes): its folder in this checkout is then on the path."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        folder = Path(__file__).resolve().parents[3] / "services" / name
        if exc.name != module.split(".")[0] or not folder.is_dir() or str(folder) in sys.path:
            raise
        sys.path.append(str(folder))
        return importlib.import_module(module)


_CHROMA = "http://chroma:8000"
# codex-lineage's address in the chart: its Service is the release's (<release>-codex-lineage); the chart renders
# every env value with tpl
_CODEX_LINEAGE_IN_HELM = 'http://{{ include "moe-fleet.fullname" . }}-codex-lineage:8109'

# the guardrail rules (docs/codex.md#guardrails) in compose: the host file GUARDRAILS_HOST_FILE, mounted into the
# services that apply them (Helm: guardrails.appliedBy and templates/guardrails.yaml)
_GUARDRAILS_ENV = {"MOE_GUARDRAILS_FILE": "/etc/moe/guardrails/guardrails.yaml  # from GUARDRAILS_HOST_FILE"}
_GUARDRAILS_MOUNT = {"volumes": ["${GUARDRAILS_HOST_FILE}:/etc/moe/guardrails/guardrails.yaml:ro"]}
# The audit record's public anchors (compose's configs; compose/anchors.py makes them): what the control plane verifies
# with and codex-lineage timestamps, cosigns and checks retired keys against (docs/deploy.md#6-the-audit-anchors)
_ANCHORS = "/etc/moe/audit"
_AUDIT_ANCHORS = [{"source": "audit-public-key", "target": f"{_ANCHORS}/audit-public-key.pem"},
                  {"source": "audit-keyring", "target": f"{_ANCHORS}/audit-keyring.json"},
                  {"source": "tsa-chain", "target": f"{_ANCHORS}/tsa-chain.pem"},
                  {"source": "witness-vkey", "target": f"{_ANCHORS}/witness.vkey"}]
_NEO4J_DOCS = {"MOE_NEO4J_URL": "bolt://neo4j:7687"}
_STAGE_WAITS = ("kafka", "kafka-setup", "redis", "postgres", "pg-migrate")

FLEET: tuple[Service, ...] = (
    Service("gateway", "gateway", 8002, "gateway.declaration:SERVICE", ready="Kafka + Postgres",
            serves="the protocols under `/v1` (chat completions, messages, responses, models); "
                   "`/v1/admin/metrics` (this process's usage counters, admin keys)",
            deploy=Deployment(
                replicas=2, autoscaling=Autoscaling(
                    min=2, max=6, lag=0, topic="",
                    note="the gateway reads answers/progress without a consumer group: scale it on CPU"),
                compose_env={"MOE_GATEWAY_WORKERS": "${MOE_GATEWAY_WORKERS}",
                             "MOE_REQUEST_TIMEOUT_S": "${MOE_REQUEST_TIMEOUT_S}",
                             **_GUARDRAILS_ENV},  # an exact repeat is served only when the rules pass it
                compose=_GUARDRAILS_MOUNT,
                helm_env={"MOE_GATEWAY_WORKERS": "1", "MOE_REQUEST_TIMEOUT_S": "2100"},
                helm={"service": {"type": "ClusterIP"}}, publish="", waits_for=_STAGE_WAITS)),  # behind compose's proxy
    Service("control-plane", "control_plane", 8110, "control_plane.declaration:SERVICE", ready="Kafka + Postgres",
            serves="admin, usage, feedback, documents, knowledge, audit and operator APIs under `/v1` and `/graph`, "
                   "the console at `/console`",
            deploy=Deployment(
                note="admin API, console, usage, documents, knowledge imports, audit API, operator endpoints",
                memory="384Mi", memory_limit="768Mi",
                resources_note="+ the MiniLM embedding model (uploads are embedded here): ~380 MiB measured",
                autoscaling=Autoscaling(lag=0, topic="", note="consumes no topic: scale it on CPU"),
                env={"MOE_CHROMA_URL": f"{_CHROMA}  # tenant documents (/v1/memory/documents)",
                     "MOE_CONSOLE_CODEX_LINEAGE_URL": "http://codex-lineage:8109  # the console's data-health page",
                     # in the fleet image (deploy/docker/Dockerfile, from OPA_IMAGE): opa check of the policy files
                     # and the egress-policy simulation (opa eval in a scratch directory)
                     "MOE_OPA_BINARY": "/usr/local/bin/opa"},
                compose_env={"MOE_OPA_URL": "http://opa:8181  # every write decision (fails closed while OPA is down)",
                             "MOE_OPA_POLICY_DIR": "/etc/moe/policy/opa  # compared with what OPA has in force "
                                                   "(GET /v1/admin/policy)",
                             # the audit API verifies with the anchors, never with what the database holds
                             "MOE_AUDIT_PUBLIC_KEY": f"{_ANCHORS}/audit-public-key.pem",
                             "MOE_AUDIT_KEYRING": f"{_ANCHORS}/audit-keyring.json",
                             "MOE_AUDIT_TSA_CHAIN": f"{_ANCHORS}/tsa-chain.pem",
                             "MOE_AUDIT_WITNESS_KEY": f"{_ANCHORS}/witness.vkey",
                             # simulations against the rules in force; read-only here: an approval is refused
                             # (409 rules_not_writable), the host file is edited instead (docs/deploy.md)
                             **_GUARDRAILS_ENV},
                # in Helm the Service is the release's (<release>-codex-lineage): the value is rendered with tpl
                helm_env={"MOE_OPA_POLICY_DIR": "/etc/moe/policy/opa",
                          "MOE_CONSOLE_CODEX_LINEAGE_URL": _CODEX_LINEAGE_IN_HELM},
                observability_env={"MOE_PROMETHEUS_URL": "http://prometheus:9090  # the providers' latency "
                                                         "percentiles (GET /v1/admin/providers)"},
                helm={"policies": "/etc/moe/policy/opa", "oidc": True, "auditVerifier": True,
                      "service": {"type": "ClusterIP"}},
                compose={"volumes": ["../policy/opa:/etc/moe/policy/opa:ro", *_GUARDRAILS_MOUNT["volumes"]],
                         "configs": _AUDIT_ANCHORS},
                publish="loopback", waits_for=(*_STAGE_WAITS, "opa"))),  # its client routes: via the proxy
    Service("planner", "planner", 8101, "planner.app:STAGE", deploy=Deployment(
        memory="384Mi", memory_limit="768Mi", resources_note="+ the MiniLM embedding model (onnxruntime) in memory",
        env={"MOE_CHROMA_URL": f"{_CHROMA}  # semantic cache and router (degrades to planning without it)"},
        compose_env={**_GUARDRAILS_ENV, "MOE_OPA_URL": "http://opa:8181  # each request's egress decision by its data "
                                                       "class (fails closed while OPA is down)"},
        compose=_GUARDRAILS_MOUNT, waits_for=("kafka", "kafka-setup", "redis", "llm", "opa"))),
    Service("expert-worker", "expert_worker", 8102, "expert_worker.app:STAGE", deploy=Deployment(
        replicas=2, cpu="200m", memory_limit="768Mi",
        autoscaling=Autoscaling(min=2, max=6, lag=10, note="at most kafka.topicPartitions: extra consumers idle"),
        compose={"deploy": {"replicas": "${EXPERT_WORKER_REPLICAS}"}})),
    Service("merger", "merger", 8103, "merger.app:STAGE", deploy=Deployment(
        autoscaling=Autoscaling(topic="results"), compose_env=_GUARDRAILS_ENV, compose=_GUARDRAILS_MOUNT)),
    Service("research", "research", 8104, "research.app:STAGE",
            ready="Kafka + Redis; SearXNG is not checked: when it is down, research tasks get error results",
            deploy=Deployment(
                compose_env={"MOE_SEARXNG_URL": "${MOE_SEARXNG_URL}"},
                helm_env={"MOE_SEARXNG_URL": "http://searxng:8080  # a SearXNG instance with the JSON format "
                                             "enabled"})),
    Service("critic", "critic", 8105, "critic.app:STAGE",
            deploy=Deployment(compose_env=_GUARDRAILS_ENV, compose=_GUARDRAILS_MOUNT)),
    Service("guardrail", "guardrail", 8111, "guardrail.app:STAGE",
            deploy=Deployment(compose_env=_GUARDRAILS_ENV, compose=_GUARDRAILS_MOUNT)),
    Service("mcp", "mcp_service", 8003, "mcp_service.app:STAGE", ready="Kafka + Redis + tool workers running",
            serves="`GET /tools` (the tool contracts, open), `POST /invoke` and MCP at `/mcp` (streamable HTTP) and "
                   "`/mcp/sse` (legacy SSE) (these need a key: docs/operations.md#security-defaults)",
            deploy=Deployment(
                note="Precision tools: tasks.mcp consumer, REST (/tools, /invoke) and an MCP server (/mcp)",
                cpu="200m", memory="512Mi", memory_limit="1536Mi", resources_note="SymPy and pint in each tool worker",
                autoscaling=Autoscaling(max=4),
                compose_env={"MOE_MCP_ALLOWED_HOSTS": "mcp:*  # Host headers /mcp accepts besides localhost",
                             "MOE_MCP_SERVICE_KEY": "${MOE_MCP_SERVICE_KEY:-}"},
                helm_env={"MOE_TOOL_WORKERS": "2"},
                helm={"mcp": True}, publish="loopback")),
    Service("graph-rag", "graph_rag", 8106, "graph_rag.app:STAGE", deploy=Deployment(
        memory="384Mi", memory_limit="768Mi", resources_note="+ the MiniLM embedding model (the question's vector)",
        env={"MOE_CHROMA_URL": f"{_CHROMA}  # tenant documents, searched for every graph task"})),
    Service("graph-ingest", "graph_ingest", 8107, "graph_ingest.app:STAGE", deploy=Deployment(
        compose_env={"MOE_OPA_URL": "http://opa:8181  # a learned triple's write decision (OPA down: redelivered, "
                                    "never written)"},
        waits_for=("kafka", "kafka-setup", "redis", "neo4j", "llm", "opa"))),
    Service("gap-healer", "gap_healer", 8108, "gap_healer.app:STAGE", deploy=Deployment(
        compose_env={"MOE_OPA_URL": "http://opa:8181  # a classification's write decision (OPA down: redelivered, "
                                    "never written)"},
        waits_for=("kafka", "kafka-setup", "redis", "neo4j", "postgres", "pg-migrate", "llm", "opa"))),
    Service("codex-lineage", "codex_lineage", 8109, "codex_lineage.declaration:SERVICE", ready="Kafka + Postgres",
            serves="`POST /api/v1/lineage`, `GET /api/v1/lineage?fact_id=` or `?cache_key=` (admin key)",
            deploy=Deployment(
                note="every topic -> the hash-chained audit store and OpenLineage runs (Postgres)",
                autoscaling=Autoscaling(lag=200, topic="requests"),
                env={"MOE_LINEAGE_TRANSPORT": "",
                     "MOE_LINEAGE_FACET_BASE": "http://codex-lineage:8109/api/v1/facets"},
                compose_env={
                    **_NEO4J_DOCS, "MOE_CHROMA_URL": _CHROMA,  # the datasets' names in lineage (not connected to)
                    "MOE_LINEAGE_TRANSPORT": "${MOE_LINEAGE_TRANSPORT:-}",
                    "MOE_LINEAGE_FACET_BASE": "${MOE_LINEAGE_FACET_BASE:-http://codex-lineage:8109/api/v1/facets}",
                    "MOE_AUDIT_SIGNING_KEY": "/run/secrets/audit-signing-key  # its Ed25519 key: no other service",
                    "MOE_AUDIT_WRITER_DSN": "postgresql://moe_codex_lineage:${PG_CODEX_LINEAGE_PASSWORD}@postgres:5432/"
                                            "${POSTGRES_DB}",
                    # the anchors: the compose deployment's own TSA and witness (or outside ones), the keyring, the
                    # append-only checkpoint file on a volume of its own (the topic is the other outlet)
                    "MOE_AUDIT_TSA_URL": "${MOE_AUDIT_TSA_URL:-http://tsa:3000/api/v1/timestamp}  # RFC 3161",
                    "MOE_AUDIT_TSA_CHAIN": f"{_ANCHORS}/tsa-chain.pem",
                    "MOE_AUDIT_WITNESS_URL": "${MOE_AUDIT_WITNESS_URL:-http://witness:8191}  # c2sp.org/tlog-witness",
                    "MOE_AUDIT_WITNESS_KEY": f"{_ANCHORS}/witness.vkey  # its vkey",
                    "MOE_AUDIT_KEYRING": f"{_ANCHORS}/audit-keyring.json  # the retired keys too",
                    "MOE_AUDIT_CHECKPOINT_FILE": "/var/lib/moe-audit/checkpoints.jsonl  # audit-checkpoints volume"},
                helm_env={"MOE_LINEAGE_FACET_BASE": f"{_CODEX_LINEAGE_IN_HELM}/api/v1/facets"},
                helm={"auditSigner": True},
                compose={"secrets": ["audit-signing-key"], "configs": _AUDIT_ANCHORS,
                         "volumes": [{"type": "volume", "source": "audit-checkpoints",
                                      "target": "/var/lib/moe-audit"}]})),
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
    from moe_core.stage.spec import Stage

    return [d for d in declarations() if isinstance(d, Stage)]


def declarations() -> list[Stage | ServiceDeclaration]:
    """Every declaration of the fleet: the stages and the services with their own app."""
    return [d for d in (s.declaration() for s in FLEET) if d is not None]
