"""Message payloads exchanged between the fleet's stages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from moe_core.contracts.envelope import Envelope, StageCost, utcnow
from moe_core.contracts.headers import CACHE_HIT

Confidence = Literal["high", "medium", "low"]
Role = Literal["system", "user", "assistant", "tool", "developer"]
TaskKind = Literal["expert", "tool", "research", "graph"]
Complexity = Literal["trivial", "moderate", "complex"]
LintCheck = Literal["orphans", "contradictions", "decay"]
LINT_CHECKS: tuple[LintCheck, ...] = ("orphans", "contradictions", "decay")
PlanSource = Literal["llm", "fallback", "router", "preflight", "plan_cache", "cache"]
FinishReason = Literal["stop", "length", "deadline", "error", "content_filter"]  # content_filter: a guardrail


class ImageRef(BaseModel):
    """An image of a message, carried once outside the bus: the gateway stores its bytes (moe_core.llm.images,
    Redis, with a TTL) and every message refers to them by this key."""

    key: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the image's bytes (its store key)")
    media_type: str = Field(description="image/png, image/jpeg, image/gif or image/webp (from the bytes)")
    size: int = Field(ge=1, description="Bytes")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str = ""
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, description="assistant: OpenAI tool calls [{id, type: function, function: {name, arguments}}]")
    tool_call_id: str | None = Field(default=None, description="role tool: the id of the call this result answers")
    images: list[ImageRef] = Field(default_factory=list, description="user: the images sent with this message")


class ResponseFormat(BaseModel):
    """Structured output a client asked for (OpenAI `response_format`, the Responses API's `text.format`): the final
    answer is exactly one JSON value the gateway checks against it (moe_core.llm.structured). json_object is the schema
    {"type": "object"}."""

    type: Literal["json_object", "json_schema"]
    name: str = Field(default="output", pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    json_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"},
                                        description="The JSON Schema of the answer (the client's `schema`)")
    strict: bool | None = None
    description: str | None = None


class GenerationParams(BaseModel):
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = None
    response_format: ResponseFormat | None = Field(
        default=None, description="Structured output: the call that writes the final answer (a direct task's one "
                                  "expert call, else the judge) is constrained to it; unset: prose")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Source(BaseModel):
    kind: str = Field(description="expert | web | graph (a fact the answer cited) | graph_context (a fact the judge "
                                  "was given and did not cite) | document | tool | cache | reasoning")
    ref: str
    title: str | None = None
    url: str | None = None


class FewShot(BaseModel):
    """A near (not identical) earlier question and its answer, offered to experts as an example."""

    question: str
    answer: str
    distance: float = Field(ge=0)


class ModelUse(BaseModel):
    """Which model answered which category of a request (feedback scores model x category)."""

    model: str
    category: str


class ChatRequest(Envelope):
    """gateway -> planner: one client request."""

    mode: str = Field(description="The model id the client asked for, e.g. moe-orchestrator")
    messages: list[ChatMessage] = Field(min_length=1)
    params: GenerationParams = Field(default_factory=GenerationParams)
    stream: bool = False
    user: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI tool definitions (agents)")
    tool_choice: str | dict[str, Any] | None = Field(
        default=None, description='OpenAI tool_choice: "auto" | "none" | "required" | {type: function, ...}')
    recorded_few_shot: list[FewShot] | None = Field(
        default=None, description="A replay as recorded (`replay rerun --as-recorded`): the few-shot examples the "
                                  "original plan carried from the semantic cache, which the planner takes instead "
                                  "of a cache lookup; unset: not such a replay")
    recorded_patterns: list[str] | None = Field(
        default=None, description="A replay as recorded: the learned planner patterns the original plan's prompt "
                                  "named (Plan.learned_patterns), which the planner names instead of the tenant's "
                                  "patterns of today; unset: not such a replay")
    asked_by: str | None = Field(default=None, max_length=200, description="The principal behind the request's "
                                 "verified key (moe_core.access; its id, never the key): carried only to the graph "
                                 "task and the ontology gaps its question raises, so the asker may not approve a "
                                 "classification their own question led to; unset: no key (an open gateway) or an "
                                 "older producer")


class PlannedTask(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    kind: TaskKind = "expert"
    category: str
    instruction: str = Field(min_length=1)
    tool: str | None = Field(default=None, description="kind=tool: the precision tool's name")
    args: dict[str, Any] = Field(default_factory=dict, description="kind=tool: its arguments; research: queries")


class Plan(Envelope):
    """planner -> merger: what the merger must wait for."""

    mode: str
    question: str
    tasks: list[PlannedTask] = Field(min_length=1)
    source: PlanSource = "llm"
    planner_model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    params: GenerationParams = Field(default_factory=GenerationParams)
    complexity: Complexity = "moderate"
    metadata_filters: dict[str, Any] = Field(default_factory=dict, description="Scopes retrieval downstream")
    few_shot: list[FewShot] = Field(default_factory=list)
    cache_key: str | None = Field(default=None, description="Semantic-cache entry this answer belongs to")
    user: str | None = None
    learned_patterns: list[str] | None = Field(
        default=None, description="The learned planner patterns (expert combinations the tenant rated well) the "
                                  "planner model's prompt named, most successful first; null: the planner model was "
                                  "not asked")

    def is_direct(self) -> bool:
        """A trivial question routed to one expert: answered by one plain model call (no expert protocol,
        no second tier), and that answer is the final one (the merger's fast path, whatever its confidence)."""
        return (self.complexity == "trivial" and self.source == "router" and len(self.tasks) == 1
                and self.tasks[0].kind == "expert")


class ExpertTask(Envelope):
    """planner -> expert-worker: one task of a plan."""

    task_id: str
    category: str
    instruction: str
    question: str
    history: list[ChatMessage] = Field(default_factory=list)
    params: GenerationParams = Field(default_factory=GenerationParams)
    mode: str = "moe-orchestrator"
    few_shot: list[FewShot] = Field(default_factory=list)
    user: str | None = Field(default=None, description="End user, for sticky server affinity")
    tools: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI tool definitions (agents)")
    tool_choice: str | dict[str, Any] | None = Field(default=None, description="OpenAI tool_choice, from the request")
    direct: bool = Field(default=False, description="A trivial question: the user's messages alone, one tier, "
                                                    "no expert protocol (Plan.is_direct)")
    images: list[ImageRef] = Field(default_factory=list, description="category vision: the request's images, "
                                   "sent to a model that accepts images")
    stream_answer: bool = Field(default=False, description="The worker streams its answer to the client (deltas) "
                                "as the model writes it: a direct task of a live request whose answer the merger "
                                "passes on as it is (no critic, no output guardrails, no plan shown; with tools "
                                "only in a mode that reshapes nothing)")


class ToolTask(Envelope):
    """planner -> mcp: run one precision tool."""

    task_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    question: str = ""


class ResearchTask(Envelope):
    """planner or merger -> research: search the web."""

    task_id: str
    question: str
    queries: list[str] = Field(default_factory=list)
    max_results: int = Field(default=5, ge=1, le=20)
    category: str = Field(default="research", description="Category of the planned task (copied to the result)")


class GraphTask(Envelope):
    """planner -> graph-rag: knowledge-graph context for a question."""

    task_id: str
    question: str
    metadata_filters: dict[str, Any] = Field(default_factory=dict)
    asked_by: str | None = Field(default=None, max_length=200, description="ChatRequest.asked_by: the principal "
                                 "who asked the question (copied onto the ontology gaps it raises)")


class TaskResult(Envelope):
    """A worker's result for one task -> merger."""

    task_id: str
    kind: TaskKind = "expert"
    category: str
    content: str = ""
    confidence: Confidence = "medium"
    finish_reason: FinishReason = Field(default="stop", description="length: the answering model stopped at "
                                        "max_tokens (the merger's fast path answers with it)")
    model: str | None = None
    server: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    duration_ms: float = 0.0
    sources: list[Source] = Field(default_factory=list)
    data: dict[str, Any] | None = Field(default=None, description="Structured result (tools, graph)")
    tool_calls: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI tool calls to pass back")
    from_record: bool = Field(default=False, description="A replay as recorded answered this tool task from the "
                              "record of the original request (no tool ran, no data was read)")


class Progress(Envelope):
    """Any stage -> gateway: what is happening now (streamed to clients; not published when not `live`)."""

    live_event: ClassVar[bool] = True

    stage: str
    event: str
    detail: str = ""
    task_id: str | None = None


class ErrorInfo(BaseModel):
    """code and message are the client's (no server, host or model of the fleet in them); detail is the
    operators' (each failed task's reason, with its server and model): on the record, never sent to a client."""

    code: str
    message: str
    detail: str = ""


class Answer(Envelope):
    """merger -> gateway: the final answer of a request."""

    mode: str
    content: str = ""
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    model_calls: int = 0
    experts_used: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Categories not answered in time")
    cache_hit: bool = False
    error: ErrorInfo | None = None
    models_used: list[ModelUse] = Field(default_factory=list)
    cache_key: str | None = None
    reasoning: str = Field(default="", description="The merger's thinking trace, if any")
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    question: str = ""
    ledger: list[StageCost] = Field(default_factory=list, description="The costs of the stage runs before the one "
                                    "that published the answer (the plan's, each task's; its own is `cost`): the "
                                    "edge subtracts their model time on the critical path (x-moe-overhead-ms)")

    def header_marks(self) -> dict[str, str]:
        """A cache hit's Answer (the planner's semantic hit, the edge's exact repeat) is marked x-moe-cache-hit: the
        planner's cache write-behind skips it without parsing it (issue 52: ~1 ms of its CPU per hit)."""
        return {CACHE_HIT: "1"} if self.cache_hit else {}


class Draft(Envelope):
    """merger -> critic (drafts: medical, legal) and merger or critic -> guardrail (guard: a tenant with output
    guardrails): an answer to be checked before it reaches the user."""

    question: str
    categories: list[str] = Field(default_factory=list)
    answer: Answer
    ingest: IngestEvent | None = Field(default=None, description="What to learn from the final answer "
                                       "(the critic publishes it with the answer the user gets)")
    guarded: bool = Field(default=False, description="The tenant has output guardrails: the critic sends its "
                          "reviewed answer on to the guardrail stage (topic guard), not to answers")
    response_format: ResponseFormat | None = Field(default=None, description="The request's structured output: "
                                                   "critic and guardrail do not turn the answer into other text")


class AnswerDelta(Envelope):
    """merger/critic, or the expert-worker for a task marked stream_answer -> gateway: a piece of the answer or
    of the reasoning, streamed as generated (not published when not `live`)."""

    live_event: ClassVar[bool] = True

    seq: int = Field(ge=0)
    channel: Literal["content", "reasoning"] = "content"
    content: str
    stage: str = "merger"


class Cancel(Envelope):
    """gateway -> every stage: the client went away; stop this request's remaining work."""

    reason: str = "client_disconnected"


class Feedback(Envelope):
    """gateway -> scoring, cache and graph: a user's rating of one answer."""

    rating: int = Field(ge=1, le=5)
    models_used: list[ModelUse] = Field(default_factory=list)
    cache_key: str | None = None
    question: str = ""
    graph_refs: list[str] = Field(default_factory=list, description="Graph relations the answer used")
    comment: str = Field(default="", max_length=2000)
    approved: bool = Field(default=False, description="An admin approved this rating as a global signal: it "
                                                      "changes every tenant's scores, not only its own")
    source: Literal["user", "critic"] = Field(
        default="user", description="Who rated: a user (gateway) or the critic's verdict (wrong/unsafe: rating 1, "
                                    "no models_used, so it flags cache and graph but changes no model score)")


class SynthesisInsight(BaseModel):
    """The judge's insight block (`<SYNTHESIS_INSIGHT>{...}</SYNTHESIS_INSIGHT>`, stripped from the answer): what
    the merged answer says that no single source did. graph-ingest keeps it as a :Synthesis node."""

    summary: str = Field(min_length=1, max_length=1000)
    entities: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=20,
                                                                   description="The entities it concerns")
    insight_type: str = Field(default="synthesis", max_length=40,
                              description="comparison, causal, procedural, synthesis ... (the judge's word)")


class IngestEvent(Envelope):
    """merger -> graph-ingest: an answer to learn from."""

    question: str
    answer: str
    mode: str = "moe-orchestrator"
    knowledge_type: str = Field(default="general", description="factual or procedural (the extraction strategy, "
                                "as in the original), or a domain (medical, legal, technical, math, general: then "
                                "the question decides the strategy)")
    source_expert: str | None = None
    source_model: str | None = None
    confidence: Confidence = "medium"
    synthesis_insight: str | None = Field(default=None, description="The insight's summary (`synthesis`), as text")
    synthesis: SynthesisInsight | None = Field(default=None, description="The judge's insight block, when it "
                                               "emitted one for an answer merged from two or more results")
    cache_hit: bool = False
    review_domains: list[str] = Field(default_factory=list, description="Protected domains the control plane's "
                                      "policy found in the text (POST /v1/memory/ingest): every triple learned "
                                      "from it waits in the quarantine for review")
    submitted_by: str | None = Field(default=None, max_length=200, description="The principal whose key sent the "
                                     "text (POST /v1/memory/ingest); it may not approve what is held from it")


GAP_BATCH = 8  # the terms of one question classified in one model call (OntologyGap.terms)


class OntologyGap(Envelope):
    """graph-rag -> gap-healer: a term the knowledge graph does not know."""

    term: str = Field(min_length=1, max_length=200)
    context: str = Field(default="", max_length=2000)
    asked_by: str | None = Field(default=None, max_length=200, description="The principal whose question raised "
                                 "the gap (GraphTask.asked_by): a classification held for review from it is "
                                 "submitted by them, and they may not approve it; unset: not known")
    terms: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=GAP_BATCH, description="Every new term of the same question, this one among "
        "them (empty: this one alone): gap-healer classifies them in one model call, each remembered for its own gap")


class LintRequest(Envelope):
    """operator/scheduler -> gap-healer: lint the graph."""

    checks: list[LintCheck] = Field(default_factory=lambda: list(LINT_CHECKS))


class AuditEvent(Envelope):
    """Any stage -> audit: a decision that changed (or refused to change) stored knowledge."""

    actor: str
    action: str
    subject: str
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class DeadLetter(BaseModel):
    """A message that could not be processed, with the reason. Not an envelope: it may not parse."""

    response_id: str | None = None
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    consumer: str
    reason: str
    error_type: str
    payload: str = Field(description="The original bytes, decoded as UTF-8 with replacement")
    headers: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class CheckpointBody(BaseModel):
    """A signed tree head of one tenant's audit chain (the bytes signed: its canonical JSON)."""

    format: str = Field(description="moe-audit-checkpoint/1")
    tenant_id: str
    size: int = Field(description="How many entries the tenant's chain holds")
    root: str = Field(description="The hash of entry `size` (it covers every entry before it)")
    time: str = Field(description="When the checkpoint was made (ISO 8601, UTC)")
    key_id: str = Field(description="codex-lineage's signing key (SHA-256 of the public key, 16 hex digits)")
    origin: str | None = Field(default=None, description="The tenant log's origin (c2sp.org/tlog-checkpoint)")
    tree_root: str | None = Field(default=None, description="The RFC 6962 Merkle root of entries 1..size, base64")


class AuditCheckpoint(BaseModel):
    """codex-lineage -> audit-checkpoints, keyed by tenant_id: a checkpoint of a tenant's audit chain with its
    Ed25519 signature and RFC 3161 timestamp (docs/audit.md). Not an envelope: it belongs to no request."""

    checkpoint: CheckpointBody
    signature: str = Field(description="Ed25519 over the checkpoint's canonical JSON, base64")
    timestamp: str | None = Field(default=None, description="The RFC 3161 TimeStampResp (DER, base64)")
    note: str | None = Field(default=None, description="The C2SP checkpoint note: codex-lineage's signature and the "
                             "witness's cosignature (c2sp.org/tlog-witness)")


class UsageCharged(Envelope):
    """gateway -> control-plane: one request's settled usage (gateway.metering), written once per response_id
    into usage_requests and usage_daily by the control plane (control_plane.usage.recorder). Published
    before the edge finishes the request's counters, so a settler that dies in between leaves the hold to the
    sweeper, which publishes the same charge again (the writer ignores it). deadline_at: the request's."""

    key_id: str = Field(min_length=1, max_length=128)
    mode: str = Field(min_length=1, max_length=128, description="The fleet mode that served the request")
    model: str = Field(min_length=1, max_length=256, description="The model id the client asked for")
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cost_micros: int | None = Field(default=None, ge=0, description="Millionths of the price's currency; unset: "
                                                                    "the model has no configured price")
    outcome: Literal["answered", "abandoned"]
    settled_by: Literal["owner", "adopter", "sweeper"] = Field(
        description="Who settled it: the replica that accepted it, the one that resumed its stream, or the sweeper")


class CacheEntry(BaseModel):
    """planner -> cache-entries (compacted), keyed by cache_key: one semantic-cache entry as it is now. The topic
    is the cache's source of truth: every planner replica keeps an in-memory index of it (rebuilt from the
    topic at start), and the planner group writes it behind into Chroma, the durable, queryable copy. A
    flag is the same entry again with `flagged` set (compaction keeps the latest). Not an envelope: it
    belongs to no request's record (the answer is on `answers`, the rating on `feedback`)."""

    cache_key: str = Field(min_length=1, max_length=128)
    scope: str = Field(min_length=1, max_length=128, description="Hash of tenant, mode and system prompt")
    tenant_id: str = Field(min_length=1, max_length=128)
    mode: str = Field(max_length=128)
    question: str = Field(description="The question as asked")
    normalised: str = Field(description="The normalised question, the text that was embedded")
    vector: str = Field(description="Its embedding: little-endian float32, base64")
    model: str | None = Field(default=None, max_length=128, description=(
        "The embedding model that made `vector` (planner.semantic_cache's MOE_CACHE_EMBEDDING); a vector is never "
        "compared with another model's. None: an entry of an older planner, a MiniLM vector"))
    answer: str
    experts_used: list[str] = Field(default_factory=list)
    models_used: list[ModelUse] = Field(default_factory=list)
    response_id: str = Field(description="The request whose answer this is")
    created_at: float = Field(description="When the answer was stored (Unix seconds): the entry's age")
    flagged: bool = Field(default=False, description="Rated 1-2: never used again, not even as an example")
    flagged_by: str | None = Field(default=None, description="The response_id of the rating's request")
    completion_tokens: int | None = Field(default=None, ge=0, description=(
        "The completion tokens the answer's model calls produced (the answer's usage): a request whose max_tokens "
        "is smaller is answered afresh (moe_core.llm.exact_cache.fits); None: an entry of an older planner"))


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "ChatRequest": ChatRequest,
    "Plan": Plan,
    "ExpertTask": ExpertTask,
    "TaskResult": TaskResult,
    "Progress": Progress,
    "Answer": Answer,
    "DeadLetter": DeadLetter,
    "ToolTask": ToolTask,
    "ResearchTask": ResearchTask,
    "GraphTask": GraphTask,
    "Draft": Draft,
    "AnswerDelta": AnswerDelta,
    "Cancel": Cancel,
    "Feedback": Feedback,
    "IngestEvent": IngestEvent,
    "OntologyGap": OntologyGap,
    "LintRequest": LintRequest,
    "AuditEvent": AuditEvent,
    "AuditCheckpoint": AuditCheckpoint,
    "UsageCharged": UsageCharged,
    "CacheEntry": CacheEntry,
}
