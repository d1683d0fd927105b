"""Every Redis key prefix of the fleet, declared once: its owner (the service that writes it; for a prefix
that several replicas of different services write, the one that defines it), who else reads or writes it,
its value type and time to live. The table in docs/operations.md is generated from it (`make schemas`), and
tests/deploy/test_redis_keys.py fails when a module of libs/ or services/ spells a key prefix that is not
declared here (it reads every string literal and f-string head of the form `<word>:`), or when a service's code,
or a libs definition it imports, reaches a prefix whose owner or readers do not name that service.

`prefix` is the key's literal start as the code spells it (up to its first placeholder); `<ns>` in `key` is
MOE_TOPIC_NAMESPACE. Today's keys follow four conventions (`<service>:<what>:<ns>:…`, `moe:<what>:<ns>:…`,
`<what>:<ns>:…`, `<ns>:<what>:…`); new keys should take the first, named after their owner.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKey:
    prefix: str  # the literal start of the key, as the code spells it
    key: str  # the whole key's shape, for the docs
    owner: str  # the service (stage_registry name) that writes it
    value: str  # the Redis type and what it holds
    ttl: str  # how long it lives: a setting, a constant, or "none"
    readers: tuple[str, ...] = ()  # other services that read (or also write) it
    purpose: str = ""


KEYS: tuple[RedisKey, ...] = (
    # the edge
    RedisKey("moe:limits:", "moe:limits:<ns>:<key or tenant>:<id>:<window>", "gateway",
             "string counters (requests, tokens, cost micros)", "the window (minute, day, month)",
             ("control-plane", "mcp"), "limits and budgets at the edge; the control plane reads them for GET "
             "/v1/usage and counts its endpoints' calls per key, as mcp counts a key's tool calls"),
    RedisKey("moe:budget:", "moe:budget:<ns>:<response_id>[:exhausted]", "gateway", "string (tokens left)",
             "the request's deadline + 120 s", ("planner", "expert-worker", "merger", "research", "critic",
                                                "graph-rag", "graph-ingest", "gap-healer", "control-plane"),
             "a request's token budget, held by each model call (closed by whoever settles it)"),
    RedisKey("moe:settle:", "moe:settle:<ns>:<response_id>[:lease], :due, :sweep", "gateway",
             "hash (the hold), sorted set (due index), strings (lease, sweep turn)",
             "deadline + 1 day (hold), 30 s (lease), 900 s after settling", ("control-plane",),
             "what settling a request needs, claimed once fleet-wide (the charge goes out on `usage`; "
             "moe_core.access.settlement; the control plane sweeps what a dead replica left)"),
    RedisKey("moe:keys:", "moe:keys:<ns>:changed", "control-plane", "pub/sub channel", "none (a channel)",
             ("gateway", "mcp", "codex-lineage"), "a key or tenant changed: every replica clears its key cache"),
    RedisKey("gateway:stream:", "gateway:stream:<ns>:<response_id>[:gen]", "gateway",
             "string (JSON stream record), string counter (generation)", "the request's deadline + grace",
             purpose="resumable streams (Last-Event-ID on any replica)"),
    RedisKey("{}:responses", "<ns>:responses:<id>", "gateway", "string (JSON stored response)",
             "MOE_RESPONSES_TTL_S", purpose="the Responses API's stored responses (GET /v1/responses/{id})"),
    RedisKey("gateway:answer", "gateway:answer:<ns>:<response_id>[:rated]", "gateway", "string (JSON AnswerRecord)",
             "MOE_FEEDBACK_WINDOW_S", ("control-plane",), "who may rate an answer and what it used "
             "(moe_core.llm.answer_records)"),
    RedisKey("images:", "images:<ns>:<sha256>", "gateway", "string (base64 bytes)", "per request (set by the gateway)",
             ("expert-worker",), "a request's images, beside the bus"),
    RedisKey("cache:exact:", "cache:exact:<ns>:<hash>", "planner", "string (JSON ExactEntry)", "MOE_CACHE_TTL_S",
             ("gateway",), "exact repeats the gateway answers itself"),
    RedisKey("cancel:", "cancel:<ns>:<response_id>", "planner", "string flag", "1 hour",
             ("expert-worker", "research", "merger", "critic"),
             "cancelled requests, marked by every stage that follows `cancel` (moe_core.runtime.cancellation)"),
    # the stages
    RedisKey("planner:outcome", "planner:outcome:<ns>:<response_id>", "planner", "string (JSON plan or cache hit)",
             "MOE_PLAN_TTL_S", purpose="memo: a redelivered request republishes the same outcome"),
    RedisKey("planner:plancache:", "planner:plancache:<ns>:<hash>", "planner", "string (JSON Plan)",
             "MOE_PLAN_CACHE_TTL_S", ("control-plane",), "the planner model's plans for a normalised question"),
    RedisKey("planner:success:", "planner:success:<ns>:<tenant>", "planner",
             "zset (expert combination -> last success)", "MOE_PLANNER_PATTERNS_RETENTION_DAYS (per member)",
             ("control-plane",), "a tenant's learned planner patterns: combinations of its well-rated answers (the "
                                 "original's moe:planner_success, per tenant)"),
    RedisKey("planner:success-count:", "planner:success-count:<ns>:<tenant>", "planner",
             "hash (combination -> successes)", "MOE_PLANNER_PATTERNS_RETENTION_DAYS (per field)", ("control-plane",),
             "a tenant's learned planner patterns: how often each combination was rated well"),
    RedisKey("planner:success-seen:", "planner:success-seen:<ns>:<response_id>", "planner", "string flag",
             "MOE_PLANNER_PATTERNS_RETENTION_DAYS", ("control-plane",),
             "an answer's rating teaches a pattern once (read by the backup tool, control_plane.ops.backup)"),
    RedisKey("planner:cachectx:", "planner:cachectx:<ns>:<key>", "planner", "string (JSON pending entry)",
             "MOE_CACHE_PENDING_TTL_S", purpose="semantic-cache entries waiting for their answer"),
    RedisKey("planner:cacheflag:", "planner:cacheflag:<ns>:<key>", "planner", "string flag",
             "MOE_CACHE_PENDING_TTL_S", purpose="a rating that came before its cache entry"),
    RedisKey("planner:cache-sweep:", "planner:cache-sweep:<ns>", "planner", "string lock", "1 hour",
             purpose="one replica sweeps the semantic cache"),
    RedisKey("qvec:", "qvec:<ns>:<model>:<sha256>", "planner", "string (base64 float32 vector)", "120 s",
             ("graph-rag",), "the question's embedding, computed once per request"),
    RedisKey("expert:result", "expert:result:<ns>:<response_id>:<task_id>", "expert-worker", "string (JSON TaskResult)",
             "MOE_RESULT_TTL_S", purpose="memo"),
    RedisKey("expert:score:", "expert:score:<ns>:<category>:<model>", "expert-worker", "hash (decayed score)",
             "none", ("control-plane",), "global model scores (admin-approved ratings)"),
    RedisKey("expert:tscore:", "expert:tscore:<ns>:<tenant>:<category>:<model>", "expert-worker",
             "hash (decayed score)", "none", ("control-plane",), "a tenant's model scores"),
    RedisKey("expert:rated:", "expert:rated:<ns>:<response_id>", "expert-worker", "string flag", "30 days",
             ("control-plane",), "a rating counted once (read by the backup tool, control_plane.ops.backup)"),
    RedisKey("expert:disabled:", "expert:disabled:<ns>", "control-plane", "set (disabled experts)", "none",
             ("expert-worker",), "operator switches (moe_core.llm.switches)"),
    RedisKey("inference:", "inference:<ns>:{servers,load,down:<server>,affinity:<user>:<model>,disabled}",
             "expert-worker", "hashes, sorted sets, strings, set",
             "3 heartbeats (health), MOE_INFERENCE_AFFINITY_TTL_S",
             ("planner", "merger", "research", "critic", "graph-rag", "graph-ingest", "gap-healer", "control-plane",
              "gateway"),
             "the inference fleet's shared state (moe_core.llm.inference.fleet), servers switched off (switches)"),
    RedisKey("merger:", "merger:<ns>:<response_id>:{plan,results,...}, merger:<ns>:deadlines", "merger",
             "strings, hashes, sorted set (deadlines)", "MOE_STATE_TTL_S",
             purpose="the fan-in's partial state, outside the process"),
    RedisKey("critic:answer", "critic:answer:<ns>:<response_id>", "critic", "string (JSON Answer)", "MOE_ANSWER_TTL_S",
             purpose="memo"),
    RedisKey("critic:flag:", "critic:flag:<ns>:<response_id>", "critic", "string", "MOE_ANSWER_TTL_S",
             purpose="a verdict's feedback published once"),
    RedisKey("guardrail:answer", "guardrail:answer:<ns>:<response_id>", "guardrail", "string (JSON Answer)",
             "MOE_ANSWER_TTL_S", purpose="memo: the checked answer"),
    RedisKey("guardrail:decision:", "guardrail:decision:<ns>:<tenant>:<response_id>[:input]", "guardrail",
             "string (JSON Decision)", "MOE_GUARDRAIL_RETENTION_S", ("control-plane", "planner"),
             "a blocked answer in quarantine, or a redaction's journal entry (moe_core.llm.guardrails.quarantine); "
             "`:input`: an input redaction, written by the planner"),
    RedisKey("guardrail:index:", "guardrail:index:<ns>:<tenant>:<kind: block or redact>", "guardrail",
             "sorted set (response ids by time)", "MOE_GUARDRAIL_RETENTION_S", ("control-plane", "planner"),
             "a tenant's quarantine and journal, newest first"),
    RedisKey("research:result", "research:result:<ns>:<response_id>:<task_id>", "research", "string (JSON TaskResult)",
             "MOE_RESULT_TTL_S", purpose="memo"),
    RedisKey("mcp:result", "mcp:result:<ns>:<response_id>:<task_id>", "mcp", "string (JSON TaskResult)",
             "MOE_RESULT_TTL_S", purpose="memo"),
    RedisKey("mcp:tools:", "mcp:tools:<ns>", "mcp", "hash (tool name -> JSON: description, version)", "none",
             ("control-plane",), "the tools the mcp replicas serve, for the console's switches"),
    RedisKey("mcp:disabled:", "mcp:disabled:<ns>", "control-plane", "set (disabled tools)", "none",
             ("mcp",), "operator switches (moe_core.llm.switches)"),
    RedisKey("graph-rag:result", "graph-rag:result:<ns>:<response_id>:<task_id>", "graph-rag",
             "string (JSON TaskResult)", "MOE_RESULT_TTL_S", purpose="memo"),
    RedisKey("graph-rag:ctx:", "graph-rag:ctx:<ns>:<hash>", "graph-rag", "string (JSON context)",
             "MOE_GRAPH_CACHE_TTL_S", purpose="graph context cache"),
    RedisKey("graph-rag:gap:", "graph-rag:gap:<ns>:<tenant>:<term>", "graph-rag", "string flag",
             "MOE_GRAPH_GAP_TTL_S",
             purpose="an unknown term reported once"),
    RedisKey("graph-ingest:triples:", "graph-ingest:triples:<ns>:<response_id>", "graph-ingest", "string (memo)",
             "MOE_INGEST_MEMO_TTL_S",
             purpose="an answer's triples extracted once, with their domains resolved before any was written"),
    RedisKey("gap-healer:class:", "gap-healer:class:<ns>:<term>", "gap-healer", "string (memo)",
             "MOE_GAP_MEMO_TTL_S", purpose="a term classified once"),
    RedisKey("graph-schedule:", "graph-schedule:<ns>:<kind>", "gap-healer", "string lock", "the run's timeout + 60 s",
             purpose="one replica runs a scheduled lint or heal"),
    # the control plane
    RedisKey("console:", "console:<ns>:session:<sid>", "control-plane", "hash {masked, csrf, key_id}",
             "MOE_CONSOLE_SESSION_TTL_S", purpose="console sessions"),
    RedisKey("control-plane:templates:", "control-plane:templates:<ns>:<tenant>", "control-plane",
             "string (JSON: the tenant's own expert templates)", "none (rewritten on every change and at start)",
             ("gateway",), "tenant expert templates the edge resolves a request's template from "
             "(moe_core.llm.published_templates)"),
    RedisKey("control-plane:fleet-config:", "control-plane:fleet-config:<ns>", "control-plane",
             "string (JSON FleetOverrides: servers, roles, experts, profiles, version)",
             "none (rewritten on every applied change and at start)",
             ("planner", "expert-worker", "merger", "research", "critic", "graph-rag", "graph-ingest", "gap-healer",
              "gateway"), "the fleet configuration changed in the console, read before each message or request "
             "(moe_core.llm.inference.live)"),
    RedisKey("memory:version:", "memory:version:<ns>:<tenant>", "control-plane", "string counter", "none",
             ("graph-rag",), "a tenant's documents changed (caches keyed by it go stale)"),
    RedisKey("memory:presence:", "memory:presence:<ns>:<tenant>", "control-plane", "string flag", "none",
             ("graph-rag",), "the tenant has documents (no lookup otherwise)"),
    RedisKey("memory:review-lock:", "memory:review-lock:<ns>:<document_id>", "control-plane", "string lock",
             "120 s (control_plane.memory.review.LOCK_S)",
             purpose="one review decision (or deletion) of a held document at a time, on every replica"),
)

# Strings of the form `<word>:` that are not Redis keys (ids, audit subjects, text): the test skips them.
NOT_KEYS: frozenset[str] = frozenset({
    "answer:",  # codex-lineage's rerun report text
    "expert:", "expert:general",  # egress decisions' roles
    "tool:*",  # Envelope.egress: the tools were decided (moe_core.policy.egress.TOOLS)
    "service:planner", "service:mcp", "service:gateway", "service:control-plane",  # audit actors
    "cli:", "key:", "tenant:", "import:", "ingest:", "quarantine:", "write:", "gap:", "principal:",  # audit subjects
    "cli:uid-", "audit-key:", "audit-log:", "policy:",  # actors and subjects of operators' commands, a policy version
    "template:", "tool:", "web:", "housekeeping:",  # parts of cache keys' hashed input, source labels
    "key:new", "keys:", "principal:new", "principals:", "usage:", "templates:",  # policy decisions' subjects
    "service:", "service:gap-healer",  # a service acting as a principal (graph-ingest asking the write policy; the
    # gap-healer as the decider of its own gap decisions, moe_core.knowledge.graph.gaps.HEALER)
    "data:", "kafka:9092", "localhost:*",  # data URLs, addresses
    "new:",  # graph-ingest's placeholder uid of an entity an earlier triple of the same answer creates (batch)
    "r:*", "dataset:", "run:",  # a tarfile mode; catalog ids; the console lineage graph's node ids
    "fact:", "document:", "approval:", "memory:",  # node ids of a fact's lineage graph (moe_core.audit.fact_lineage)
    "guardrails:", "hnsw:space",  # a simulated guardrail candidate's audit subject; a Chroma collection's metadata
    "guardrails-simulation:", "guardrails-proposal:",  # a guardrail simulation's and proposal's audit subjects
    "config:",  # a fleet configuration change's audit subject (control_plane.fleet_config)
    "egress-policy-change:",  # an egress policy change's audit subject (control_plane.policy.egress_changes_api)
    "moe:",  # a Postgres advisory lock's name, hashed by Postgres (control_plane.policy.apply_lock.lock_name)
})


def owners() -> dict[str, RedisKey]:
    return {k.prefix: k for k in KEYS}


def markdown() -> str:
    """The table in docs/operations.md (generated; tests/deploy checks it)."""
    lines = ["| key | owner (writes) | also used by | value | TTL | what for |", "|---|---|---|---|---|---|"]
    assert not any("|" in k.key + k.value + k.ttl + k.purpose for k in KEYS), "a pipe breaks the table"
    lines += [f"| `{k.key}` | {k.owner} | {', '.join(k.readers) or '—'} | {k.value} | {k.ttl} | {k.purpose} |"
              for k in KEYS]
    return "\n".join(lines)
