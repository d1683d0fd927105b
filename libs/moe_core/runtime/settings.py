"""Settings shared by every service (env prefix MOE_); each service subclasses with its own fields."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from moe_core.runtime.seed import SEED_ARCHITECTURE, SEED_ENTERPRISE, SEED_SYSTEM, SeedDefault
from moe_core.runtime.seed_env import SeedEnvSource


class FleetSettings(BaseSettings):
    """Infrastructure addresses and common behaviour. Every value can be set as MOE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = Field(default="moe", description="Names the service in metrics, traces and logs, and "
                              "its consumer group (each service sets its own)")
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        default="PLAINTEXT", description="How the Kafka clients connect: SASL_PLAINTEXT (the local fleet), SASL_SSL "
                                         "(SASL over TLS, verified with kafka_ca_file), SSL or PLAINTEXT (no identity)")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="The SASL mechanism (with a SASL_* protocol)")
    kafka_username: str = Field(default="", description="The service's Kafka principal (its own name in the local "
                                "fleet, compose and the chart: its ACLs come from its declaration)")
    kafka_password: SecretStr = Field(default=SecretStr(""), description="The principal's SCRAM password")
    kafka_ca_file: str = Field(default="", description="CA certificate (PEM) the broker's TLS certificate is verified "
                                                       "with (SSL, SASL_SSL); empty = the system's trust store")
    kafka_producer: Literal["aiokafka", "librdkafka"] = Field(
        default="librdkafka", description="The client the services publish with: librdkafka (confluent-kafka: the "
                                          "same acks=all, idempotence and key partitioner as aiokafka, about half "
                                          "its CPU per record; moe_core.runtime.rdkafka_producer) or aiokafka "
                                          "(FastStream's own)")
    kafka_consumer: Literal["aiokafka", "librdkafka"] = Field(
        default="librdkafka", description="The client the services consume with: librdkafka (confluent-kafka behind "
                                          "aiokafka's consumer interface: the same groups, deferred commits, key "
                                          "ordering and redelivery, 12-25 % less CPU per Kafka hop; "
                                          "moe_core.runtime.rdkafka_consumer) or aiokafka (FastStream's own, the "
                                          "fallback)")
    kafka_create_topics: bool = Field(
        default=True, description="Create the fleet's topics and update their retention at start; false where an "
                                  "admin does it (fleetctl, the chart's topics Job, compose's kafka-setup) and the "
                                  "service's principal may not (broker ACLs)")
    topic_namespace: str = Field(default="moe", pattern=r"^[a-zA-Z0-9_-]+$", description="Topic prefix "
                                 "(moe.requests.v1 ...); also suffixes consumer groups; tests use their own")
    topic_partitions: int = Field(default=6, ge=1, description="Partitions of the topics the services create "
                                  "(existing topics are not resized)")
    topic_replication_factor: int = Field(default=1, ge=1, description="Replicas of each topic created (the "
                                          "chart's kafka-setup Job sets topics.replicationFactor)")
    redis_url: str = Field(default="redis://127.0.0.1:6380/0", description="Redis: request state, memos, caches")
    redis_ca_file: str = Field(default="", description="CA certificate (PEM) Redis's TLS certificate is verified "
                               "against (a rediss:// URL; empty = the system's trust store)")
    postgres_dsn: str = Field(default="postgresql://moe@127.0.0.1:5433/moe",
                              description="Postgres: keys, usage, the audit store, the graph's run history")
    http_host: str = Field(default="127.0.0.1", description="Address the service's HTTP server listens on")
    http_port: int = Field(default=8000, description="Port of the service's HTTP server (each service sets its own)")
    log_level: str = Field(default="INFO", description="Log level")
    log_json: bool = Field(default=False, description="Log JSON lines (with service and response_id)")
    consumer_workers: int = Field(default=4, ge=1, description="Consumers per group subscription when "
                                  "MOE_CONSUMER_IN_FLIGHT is 1 (each handles its partitions one record at a time)")
    consumer_in_flight: int = Field(default=64, ge=1, description="Records a group subscription handles at once "
                                    "(moe_core.runtime.key_ordered: one consumer, in order per key, on the task topics "
                                     "per "
                                    "task, the commit never past a record in flight); 1: one record at a time per "
                                    "consumer (a plan's tasks then wait for each other)")
    malloc_trim_interval_s: float = Field(default=10.0, ge=0, description="Every this many seconds, the memory "
                                          "the process freed goes back to the system (glibc malloc_trim): what a "
                                          "burst or a start-up freed otherwise stays resident (the gateway's streams, "
                                          "codex-lineage's checkpoints, the planner's ~29 MB of start-up heap; issue "
                                          "52); 0: never (moe_core.runtime.memory_trim)")
    blas_threads: int = Field(default=1, ge=1, description="Threads of numpy's BLAS in each service process "
                              "(moe_core.runtime.blas): a service scales by processes and replicas")
    startup_retry_s: float = Field(default=120.0, ge=0, description="A store or broker that fails transiently "
                                   "while the service starts (a busy Neo4j, a broker still electing) is retried "
                                   "this long with backoff before the service gives up and exits")
    shutdown_grace_s: float = Field(default=6.0, ge=0, description="A stopping service waits this long for the "
                                    "HTTP requests and then the messages it is handling; what is still running is "
                                    "cancelled (a message stays uncommitted: the next owner handles it). Twice it "
                                    "stays below the supervisor's kill timeout (fleetctl 15 s, Kubernetes 30 s)")
    retry_base_s: float = Field(default=0.5, gt=0, description="A transient failure's first backoff "
                                "before the record is redelivered; doubled per attempt (moe_core.runtime.redelivery)")
    retry_cap_s: float = Field(default=30.0, gt=0, description="The longest backoff between redeliveries")
    retry_max_attempts: int = Field(default=10, ge=1, description="Attempts at a record failing transiently "
                                    "before it is dead-lettered with its last error")
    # issue 52, bench.kafka_costs_log (the broker's request log): at concurrency 1 a full request's fetches were the
    # idle polls of ~28 consumers (500 ms: 77 fetches a second idle, 32 of a full request's 47 fetches empty). Longer
    # waits cost no latency while a consumer only long-polls; they bound the rare stall of a request the client queues
    # behind a parked fetch on the same connection (a ListOffsets, a Metadata refresh, the first fetch after a
    # rebalance), hence 2 s rather than the broker's 30 s.
    kafka_fetch_max_wait_ms: int = Field(
        default=2_000, ge=0, le=30_000,
        description="How long the broker holds an idle consumer's fetch; a record ends it at once (long poll)",
    )
    kafka_linger_ms: int = Field(
        default=500, ge=0, le=5_000,
        description="How long the broker may hold the fetch of a consumer no request waits for (codex-lineage's "
                    "record, the control plane's usage, the semantic cache's write-behind, graph learning) to gather "
                    "several records: fewer fetches for the broker and the consumer, each such record handled at most "
                    "this much later; 0: every record as it arrives, as on the request's path",
    )
    # issue 52: every group consumer with records handled commits once per interval, and at c=1 a request (~0.45 s)
    # fell into its own windows: 7.3 OffsetCommits per full request at 200 ms. A longer interval only widens what a
    # crash redelivers (a revoke and a stop still flush first): each stage's handling is idempotent
    # (moe_core.runtime.idempotency: a redelivered input republishes its remembered outcome, calls no model), the
    # at-least-once the commits were already batched on; nothing waits for a commit but the bench's settle.
    kafka_commit_interval_ms: int = Field(
        default=1_000, ge=0, le=60_000,
        description="A stage's consumer commits the offsets of the records it handled at most this often (and "
                    "on rebalance and shutdown); 0 = after every record (moe_core.runtime.offset_commits)",
    )
    inference_servers: str = Field(
        default="",
        validation_alias=AliasChoices("INFERENCE_SERVERS", "MOE_INFERENCE_SERVERS"),
        description="JSON list of inference servers; empty = the embedded local LLM",
    )
    unload_after_expert: bool = Field(
        default=False, description="Every Ollama server of INFERENCE_SERVERS that does not say otherwise "
        "(`unload_after_expert`) unloads an expert's model once it answered (keep_alive 0), the original's default "
        "(deploy/profiles/seed.env)")
    model_assignments: str = Field(
        default="",
        validation_alias=AliasChoices("MODEL_ASSIGNMENTS", "MOE_MODEL_ASSIGNMENTS"),
        description="JSON {role: [model refs]}; roles: planner, judge, default",
    )
    expert_templates: str = Field(
        default="",
        validation_alias=AliasChoices("EXPERT_TEMPLATES", "MOE_EXPERT_TEMPLATES"),
        description="JSON {category: [model refs]}, ordered by preference",
    )
    expert_templates_file: str = Field(
        default="policy/templates.yaml",
        description="Named expert templates (YAML, moe_core.llm.templates), selected per key or request; a relative "
                    "path is looked up in the working directory, then the repository; empty = none",
    )
    guardrails_file: str = Field(
        default="policy/guardrails.yaml",
        description="Guardrail rules per tenant (YAML, moe_core.llm.guardrails): checked at start (a file that does "
                    "not parse stops it, naming the line); a relative path is looked up in the working directory, "
                    "then the repository; empty = none",
    )
    guardrails: str = Field(default="", description="The guardrails file's YAML text itself (Helm, compose); set, "
                                                    "it wins over the file")
    guardrails_reload_s: float = Field(default=5.0, gt=0, description="How often the guardrails file is looked at "
                                       "again; a change that does not parse keeps the previous rules (logged, "
                                       "counted)")
    guardrail_check_timeout_s: float = Field(default=2.0, gt=0, le=60, description="How long one guardrail rule "
                                             "may search one text; longer, the text is blocked (fail closed)")
    guardrail_retention_s: int = Field(default=90 * 86400, ge=3600, description="How long a quarantined answer "
                                       "and a redaction's journal entry (input or output) are kept for review (the "
                                       "audit record of the decision is permanent)")
    named_templates: str = Field(
        default="", description="The templates file's YAML text itself (Helm, compose); set, it wins over the file",
    )
    expert_tier_boundary_b: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("EXPERT_TIER_BOUNDARY_B", "MOE_EXPERT_TIER_BOUNDARY_B"),
        description="Expert entries without a tier: a model of up to this many billion parameters (read from its "
                    "name: phi4:14b, qwen2.5-72b) is tier 1, a larger one tier 2; a name without a size is tier 1")
    inference_heartbeat_s: float = Field(default=10.0, gt=0, description="Fleet: poll servers this often")
    inference_unhealthy_s: float = Field(default=15.0, gt=0, description="Fleet: skip a failed server this long")
    inference_affinity_ttl_s: int = Field(default=300, ge=1, description="Fleet: sticky user->server affinity")
    tools_enabled: str = Field(default="all", description="Precision tools offered: 'all' or a comma list")
    tools_disabled: str = Field(default="", description="Precision tools switched off (comma list)")
    tools_external: str = Field(default="", description="Precision tools whose calls leave the fleet (comma list; "
                                "every built-in tool computes within it): the egress policy decides per data class "
                                "whether a request may use them (policy/opa/egress.rego)")
    local_llm_url: str = Field(default="http://127.0.0.1:8081",
                               description="The embedded LLM: the one server when INFERENCE_SERVERS is empty")
    local_llm_model: str = Field(default="smollm2-135m", description="The model the embedded LLM serves")
    local_llm_timeout_s: float = Field(default=120.0, gt=0, description="The embedded LLM's per-call timeout (a "
                                       "call still ends at its request's deadline); `make up` sets it to the "
                                       "request timeout, 300 s: a CPU model sharing 2 cores can be slow")
    producer_signing_key: str = Field(default="", description="This service's own Ed25519 key (PEM file, 0600): "
                                      "it signs every message it publishes (moe_core.runtime.producer_signing); "
                                      "empty: it publishes unsigned, and consumers that check refuse its messages")
    producer_keys: str = Field(default="", description="The producers' public keys and topics (JSON file generated "
                               "from the stage declarations: python -m moe_core.stage.producers): with it, "
                               "codex-lineage records and graph-ingest acts on a message only when a declared "
                               "producer of its topic signed it; empty: nothing is checked (a warning at start)")
    audit_schema: str = Field(default="audit", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                              description="Postgres schema of the audit store (written by codex-lineage)")
    audit_public_key: str = Field(default="", description="codex-lineage's audit public key (PEM file): verifying "
                                                          "the audit store's signatures (GET /v1/audit?verify=true)")
    audit_keyring: str = Field(default="", description="codex-lineage's keyring (JSON file): every public key it "
                                                       "signed with and when each was retired; verifying accepts "
                                                       "them all (python -m codex_lineage.rotate_key)")
    audit_tsa_chain: str = Field(default="", description="The timestamp authority's certificate chain (PEM file): "
                                                         "verifying the checkpoints' RFC 3161 timestamps; several "
                                                         "chains one after the other (each ending with its root) "
                                                         "after a change of TSA: the old and the new authority's")
    audit_witness_key: str = Field(default="", description="The witness's cosignature key (its C2SP vkey, or a file "
                                                           "holding it): a checkpoint counts as witnessed only with "
                                                           "its valid cosignature")
    audit_log_name: str = Field(default="moe-fleet/audit", pattern=r"^[^\s+]+$",
                                description="The name of codex-lineage's checkpoint note key; each tenant's log "
                                            "origin is <name>/<tenant> (c2sp.org/tlog-checkpoint)")
    audit_timestamp_skew_s: float = Field(default=300.0, gt=0, description="How far a checkpoint's timestamp may "
                                                                           "be from the time it claims")
    topic_retention_days: str = Field(
        default="", description='JSON {topic kind: days} over the audit defaults (moe_core.runtime.retention), e.g. '
                                '{"answers": 90}; applied when topics are created and updated when changed')
    otel_exporter_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "MOE_OTEL_EXPORTER_ENDPOINT"),
        description="OTLP/gRPC endpoint the spans are exported to; empty = no export",
    )
    trace_sample_ratio: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="Share of new traces recorded (parent-based: a trace is kept whole or not at all); errors, dead "
                    "letters and cancellations are recorded always (moe_core.runtime.observability.sampling); "
                     "1 = every "
                    "trace",
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The seed's variable names (moe_core.runtime.seed_env) below the fleet's own: read, or refused at start
        naming them; an unknown MOE_* name is a warning."""
        return init_settings, env_settings, SeedEnvSource(settings_cls), dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _kafka_identity(self) -> FleetSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_username and self.kafka_password.get_secret_value()):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs MOE_KAFKA_USERNAME and "
                             "MOE_KAFKA_PASSWORD")
        return self

    def group_id(self) -> str:
        """Consumer group: the service name, namespaced so test fleets never join production groups."""
        if self.topic_namespace == "moe":
            return self.service_name
        return f"{self.service_name}.{self.topic_namespace}"


_HISTORY = f"{SEED_ARCHITECTURE}: Configuration Reference (History & Timeouts)"
SEED_DEFAULTS = (
    SeedDefault("EXPERT_TIER_BOUNDARY_B", "20 (T1 <= 20B parameters, T2 above)", "EXPERT_TIER_BOUNDARY_B", 20.0,
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (Expert Routing)"),
    SeedDefault("sticky session (moe:sticky:*) TTL", "300 s", "MOE_INFERENCE_AFFINITY_TTL_S", 300,
                doc=f"{SEED_ENTERPRISE}: Sticky Sessions"),
    SeedDefault("warm-model check / model registry", "/api/ps cached 5 s; registry polled every 60 s",
                "MOE_INFERENCE_HEARTBEAT_S", 60.0, ours=10.0, doc=f"{SEED_ENTERPRISE}: Floating Node Discovery",
                why="structural: one poll serves both the health check and the warm-model list, with no "
                    "per-request /api/ps fan-out; 10 s keeps the warm list fresher than the original's 60 s "
                    "registry, at one request per server and interval across the fleet"),
    SeedDefault("VRAM unload after each expert", "on: async keep_alive=0 after each expert call",
                "MOE_UNLOAD_AFTER_EXPERT", True, ours=False,
                doc=f"{SEED_ARCHITECTURE}: Optimization table (VRAM unload after inference)",
                why="structural: the embedded server is llama.cpp, which has no unload, and where one model serves "
                    "the experts and the judge an unload after every expert call reloads it for the judge; an "
                    "Ollama server opts in with `unload_after_expert` in INFERENCE_SERVERS (its expert calls then "
                    "carry keep_alive 0), every Ollama server with MOE_UNLOAD_AFTER_EXPERT (the seed profile, "
                    "deploy/profiles/seed.env)"),
    SeedDefault("LOG_LEVEL", "INFO", "MOE_LOG_LEVEL", "INFO", doc=f"{SEED_SYSTEM}: 13. Configuration"),
    SeedDefault("request deadline", "none: each call its own timeout (planner 300 s, expert and judge 900 s)",
                "MOE_REQUEST_TIMEOUT_S", None, ours=2100.0, doc=_HISTORY,
                why="structural: the fleet gives a request one absolute deadline (the envelope's deadline_at) "
                    "as well as each call's timeout (MOE_PLANNER_TIMEOUT_S, MOE_EXPERT_TIMEOUT_S, "
                    "MOE_JUDGE_TIMEOUT_S); its default, 2100 s, is their sum, so a request of the original's "
                    "slowest calls still ends as a whole answer; `make up`'s local fleet sets 300 s, the tests "
                    "their own (docs/operations.md, timeout profiles)"),
    SeedDefault("response metadata (moe:response:*) TTL", "7 days", "MOE_FEEDBACK_WINDOW_S", 7 * 86_400,
                doc=f"{SEED_ARCHITECTURE}: Cache Key Reference"),
    SeedDefault("Kafka retention", "7 days / 512 MB", "MOE_TOPIC_RETENTION_DAYS", None, ours="",
                doc=f"{SEED_SYSTEM}: 14. Data Persistence",
                why="deliberate: retention for audit (docs/audit.md#retention): the record topics are kept "
                    "longer than 7 days, per topic kind (moe_core.runtime.retention); empty = those defaults"),
    SeedDefault("force_think modes", "agent_orchestrated, research, report, plan",
                "moe_core.llm.modes:FORCE_THINK_MODES",
                ("moe-orchestrator-agent-orchestrated", "moe-orchestrator-plan", "moe-orchestrator-report",
                 "moe-orchestrator-research"), doc=f"{SEED_ARCHITECTURE}: Operation Modes"),
    SeedDefault("mode concise", "<= 120 words", "moe_core.llm.modes:CONCISE_WORDS", 120,
                doc=f"{SEED_ARCHITECTURE}: Operation Modes"),
)
