"""One metrics registry per process; every metric name of the fleet is defined here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_DEAD_LETTERED = Counter(
    "moe_messages_dead_lettered_total",
    "Messages sent to the dead-letter topic",
    ["service", "topic", "error_type"],
    registry=REGISTRY,
)
KAFKA_REFUSED = Counter(
    "moe_kafka_refused_total",
    "Kafka requests the broker refused for the service's principal (ACLs: a topic or group it may not use)",
    ["service", "topic", "operation"],
    registry=REGISTRY,
)
# The stage runtime's one observation per consumed message (its _count: messages handled, by how their handling
# ended) and one increment per published message; FastStream's Prometheus middleware is not installed (issue 29).
STAGE_SECONDS = Histogram(
    "moe_stage_seconds",
    "Time a stage spends on one message, by how its handling ended (outcome: ok, retried: a transient failure, "
    "delivered again; dead_lettered; failed: neither retried nor dead-lettered; skipped: acknowledged unparsed, a "
    "record its subscription skips by a header, Consumes.skip_marked)",
    ["service", "topic", "outcome"],
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MESSAGES_PUBLISHED = Counter(
    "moe_messages_published_total",
    "Messages a service published through its bus (the broker acknowledged them), by destination topic",
    ["service", "topic"],
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "moe_store_seconds",
    "One call to a store (Redis command or pipeline, Chroma HTTP request, Neo4j query), by store and operation",
    ["store", "op"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
STORE_UP = Gauge(
    "moe_store_up",
    "A stage's view of a store it needs: 1 up, 0 marked down by its circuit breaker (tasks fail at once with the "
    "reason until a background probe succeeds; moe_core.stage.breaker)",
    ["service", "store"],
    registry=REGISTRY,
)
INFERENCE_SECONDS = Histogram(
    "moe_inference_seconds",
    "Duration of one inference call",
    ["server", "model", "outcome"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
INFERENCE_TOKENS = Counter(
    "moe_inference_tokens_total", "Tokens used by inference calls", ["server", "model", "kind"], registry=REGISTRY
)
GATEWAY_REQUESTS = Counter(
    "moe_gateway_requests_total", "Gateway requests", ["endpoint", "mode", "status"], registry=REGISTRY
)
# The overhead ledger per request (gateway.overhead, moe_core.runtime.observability.ledger): the edge's wall time split
# into
# the fleet's own time (x-moe-overhead-ms) and the model time on the request's critical path (x-moe-model-ms)
GATEWAY_OVERHEAD = Histogram(
    "moe_gateway_overhead_seconds",
    "A request's time in the fleet itself: the edge's wall time minus the model time on its critical path",
    ["endpoint", "stream"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5),
)
GATEWAY_MODEL_TIME = Histogram(
    "moe_gateway_model_seconds",
    "A request's model time on its critical path (what x-moe-overhead-ms leaves out)",
    ["endpoint", "stream"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
GATEWAY_LATENCY = Histogram(
    "moe_gateway_request_seconds",
    "Gateway request latency (to last byte)",
    ["endpoint", "stream"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
GATEWAY_PENDING = Gauge(
    "moe_gateway_pending_requests", "Requests this gateway process is waiting on", registry=REGISTRY
)
GATEWAY_CANCELLED = Counter(
    "moe_gateway_cancelled_total", "Requests abandoned before their answer (Cancel published)", ["reason"],
    registry=REGISTRY,
)
GATEWAY_RESUMED = Counter(
    "moe_gateway_streams_resumed_total", "Streams resumed with Last-Event-ID, by API", ["api"], registry=REGISTRY,
)
GATEWAY_EXACT_CACHE = Counter(
    "moe_gateway_exact_cache_total", "Exact-repeat lookups in the gateway (hit: answered with no hop)", ["outcome"],
    registry=REGISTRY,
)
PLANNER_HOUSEKEEPING = Counter(
    "moe_planner_housekeeping_total", "Client housekeeping requests (title, tags, ...) answered on the cheap path",
    ["kind", "outcome"], registry=REGISTRY,
)
GATEWAY_IMAGES = Counter(
    "moe_gateway_images_total", "Images in requests: accepted, or the reason they were refused", ["outcome"],
    registry=REGISTRY,
)
GATEWAY_FIRST_TOKEN = Histogram(
    "moe_gateway_first_token_seconds",
    "Streamed requests: time from the request to the first answer token sent",
    ["endpoint"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
# The open /metrics carries no tenant, key or client-chosen model id: usage there is by mode only. Per tenant,
# key and model the same figures are in TENANT_REGISTRY, which the gateway serves to admin keys only
# (GET /v1/admin/metrics).
GATEWAY_USAGE_REQUESTS = Counter(
    "moe_gateway_usage_requests_total", "Requests settled against keys' budgets, by mode", ["mode"],
    registry=REGISTRY,
)
GATEWAY_USAGE_TOKENS = Counter(
    "moe_gateway_usage_tokens_total", "Tokens charged to keys, by mode", ["mode", "kind"], registry=REGISTRY,
)
GATEWAY_USAGE_COST = Counter(
    "moe_gateway_usage_cost_total", "Spend charged to keys, by mode, in the currency of the configured model prices",
    ["mode"], registry=REGISTRY,
)
TENANT_REGISTRY = CollectorRegistry(auto_describe=True)
TENANT_USAGE_REQUESTS = Counter(
    "moe_gateway_tenant_requests_total", "Requests settled against a key's budget (GET /v1/usage figures)",
    ["tenant", "key", "mode", "model"], registry=TENANT_REGISTRY,
)
TENANT_USAGE_TOKENS = Counter(
    "moe_gateway_tenant_tokens_total", "Tokens charged to a key (GET /v1/usage figures)",
    ["tenant", "key", "mode", "model", "kind"], registry=TENANT_REGISTRY,
)
TENANT_USAGE_COST = Counter(
    "moe_gateway_tenant_cost_total", "Spend charged to a key, in the currency of the configured model prices",
    ["tenant", "key", "mode", "model"], registry=TENANT_REGISTRY,
)
GATEWAY_LIMITED = Counter(
    "moe_gateway_limited_total", "Requests refused with 429 by a limit or budget", ["scope", "limit"],
    registry=REGISTRY,
)
MERGER_FINALIZED = Counter(
    "moe_merger_answers_total", "Answers produced by the merger", ["path"], registry=REGISTRY
)
GUARDRAIL_DECISIONS = Counter(
    "moe_guardrail_decisions_total",
    "Guardrail decisions on questions (input) and answers (output): the rule and its action (block, redact)",
    ["direction", "rule", "action"], registry=REGISTRY,
)
GUARDRAIL_RELOAD_ERRORS = Counter(
    "moe_guardrail_reload_errors_total",
    "Guardrail rule files that did not parse on reload (the previous rules stayed in force)",
    ["service"], registry=REGISTRY,
)
PLANNER_ROUTES = Counter(
    "moe_planner_routes_total",
    "How the planner answered or planned a request (preflight, cache_hit, plan_cache, router, trivial, llm, fallback)",
    ["route"], registry=REGISTRY,
)
SEMANTIC_CACHE = Counter(
    "moe_semantic_cache_total", "Semantic cache operations by outcome (lookup hit/few_shot/miss/error, store, flag)",
    ["op", "outcome"], registry=REGISTRY,
)
EXPERT_CALLS = Counter(
    "moe_expert_calls_total", "Expert model calls by category, tier and outcome", ["category", "tier", "outcome"],
    registry=REGISTRY,
)
INFERENCE_FAILOVERS = Counter(
    "moe_inference_failovers_total", "Inference calls that left a server for the next one", ["server", "reason"],
    registry=REGISTRY,
)

KNOWLEDGE_IMPORT_EVENTS = Counter(
    "moe_knowledge_import_events_total", "Steps of knowledge exports and imports (the audit actions)", ["action"],
    registry=REGISTRY,
)
POLICY_DECISIONS = Counter(
    "moe_policy_decisions_total", "Write decisions asked of Open Policy Agent, by action and outcome (allowed, "
    "denied, held: a learned triple sent to review, unavailable: OPA could not decide, so nothing was written)",
    ["action", "outcome"], registry=REGISTRY,
)
POLICY_FILES_NOT_IN_FORCE = Gauge(
    "moe_policy_files_not_in_force", "1 while the policy files on disk differ from the policies OPA has in force "
    "(a change that does not parse or compile: the previous policies decide), as last checked", registry=REGISTRY,
)
EGRESS_POLICY_RECONCILED = Counter(
    "moe_egress_policy_reconciled_total", "The approved egress policy kept in force at OPA by the control plane: "
    "action reapplied (cause opa_restarted, file_reloaded, unapproved_put, not_pushed), superseded (a newer "
    "reviewed policy/opa/egress.rego won) or failed (cause: why it could not be checked or put in force)",
    ["action", "cause"], registry=REGISTRY,
)
EGRESS_POLICY_UNREVIEWED = Gauge(
    "moe_egress_policy_unreviewed", "1 while no approved egress policy change is in force and OPA's moe.egress "
    "module is not the reviewed policy/opa/egress.rego (a module put with OPA's token, or a file OPA refused): shown, "
    "not reverted (the control plane and OPA may see a new ConfigMap at different moments)", registry=REGISTRY)
KNOWLEDGE_IMPORTS_PENDING = Gauge(
    "moe_knowledge_imports_pending", "Knowledge-import change sets waiting for approval (all tenants; as this "
    "replica last counted them: take the max over replicas)", registry=REGISTRY,
)


# The graph's maintenance (gap-healer): counters of what its runs changed, gauges of what the graph holds
# (counted from Neo4j by the gap-healer's scheduler on every tick: take the max over replicas).
GRAPH_LINT_FINDINGS = Counter(
    "moe_graph_lint_findings_total", "Lint findings acted on (a deletion each), by check (contradictions, decay, "
    "orphans)", ["check"], registry=REGISTRY,
)
GRAPH_DECAY_DELETIONS = Counter(
    "moe_graph_decay_deletions_total", "Relations deleted by the decay rule (trust below the floor)", registry=REGISTRY,
)
GRAPH_GAP_DECISIONS = Counter(
    "moe_graph_gap_decisions_total", "Ontology gaps decided by the gap-healer (healed, rejected, quarantined: "
    "the classification waits for review) or whose classification failed (failed: the gap stays open)",
    ["outcome"], registry=REGISTRY,
)
GRAPH_RUNS = Counter(
    "moe_graph_runs_total", "Graph maintenance runs (lint, heal) by trigger and outcome",
    ["kind", "trigger", "outcome"], registry=REGISTRY,
)
GRAPH_RUN_LAST_SUCCESS = Gauge(
    "moe_graph_run_last_success_timestamp_seconds", "When this replica last finished a run of this kind with "
    "success", ["kind"], registry=REGISTRY,
)
GRAPH_SIZE = Gauge(
    "moe_graph_size", "What the knowledge graph holds (all tenants): entities, relations", ["kind"], registry=REGISTRY,
)
GRAPH_GAPS = Gauge(
    "moe_graph_ontology_gaps", "Ontology gaps by state (open, healed, rejected, quarantined)", ["state"],
    registry=REGISTRY,
)
GRAPH_QUARANTINE = Gauge(
    "moe_graph_quarantine_items", "Quarantined triples by status: every addition is counted until decided "
    "(pending), then as the decision (approved, rejected)", ["status"], registry=REGISTRY,
)


def metrics_response(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST
LINEAGE_RECORDS = Counter(
    "moe_lineage_records_total", "Messages recorded in the audit trail by codex-lineage", ["stage", "topic"],
    registry=REGISTRY,
)
LINEAGE_EVENTS = Counter(
    "moe_lineage_events_total", "OpenLineage run events derived by codex-lineage", ["stage", "event_type"],
    registry=REGISTRY,
)
LINEAGE_BATCH_RECORDS = Histogram(
    "moe_lineage_batch_records", "Records codex-lineage stored in one transaction (a consumer batch; "
    "MOE_KAFKA_LINGER_MS gathers larger ones at low load)", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
LINEAGE_LAG = Gauge(
    "moe_lineage_lag_seconds", "Age of the last record codex-lineage processed, per topic (lineage lag)", ["topic"],
    registry=REGISTRY,
)
PRODUCER_REFUSED = Counter(
    "moe_producer_signature_refused_total", "Messages a consumer refused because no declared producer of their topic "
    "signed them (moe_core.runtime.producer_signing): unsigned, unknown_signer, not_a_producer, bad_signature or "
    "producer_mismatch; each dead-lettered with its reason, never recorded or acted on",
    ["service", "topic", "reason"], registry=REGISTRY,
)
AUDIT_CHECKPOINTS = Counter(
    "moe_audit_checkpoints_total", "Signed, timestamped audit checkpoints codex-lineage made (made), could not "
    "make (failed: e.g. the timestamp authority unreachable), refused (refused: the stored chain was changed, cut, "
    "erased, or the checkpoint not stored) or could not have witnessed (unwitnessed)",
    ["outcome"], registry=REGISTRY,
)
COMPLIANCE_RULE_STATUS = Gauge(
    "moe_compliance_rule_status", "The latest evaluation of each compliance rule (codex-lineage): 1 pass, 0 fail, "
    "-1 not applicable", ["framework", "rule"], registry=REGISTRY,
)
DATA_HEALTH_RUNS = Gauge(
    "moe_data_health_runs", "Ingest runs (graph-ingest, knowledge imports) of the data-health window "
    "(MOE_DRIFT_WINDOW_H) by the severity the drift checks gave them", ["severity"], registry=REGISTRY,
)
DATA_HEALTH_SIGNALS = Gauge(
    "moe_data_health_signals", "Data-health checks of the semantic cache (check=cache: one per tenant) and the "
    "experts' scores (check=scores: one per tenant x category x model) in the window, by severity",
    ["check", "severity"], registry=REGISTRY,
)
DATA_HEALTH_SIGNAL_FLAGS = Gauge(
    "moe_data_health_signal_flags", "Cache and score data-health checks of the window that raised each drift flag",
    ["flag"], registry=REGISTRY,
)
DATA_HEALTH_FLAGS = Gauge(
    "moe_data_health_flags", "Ingest runs of the data-health window that raised each drift flag", ["flag"],
    registry=REGISTRY,
)
