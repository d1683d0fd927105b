"""planner: requests -> plan + expert tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from redis.asyncio import Redis

from moe_core.contracts import (
    CRITIC_CATEGORIES,
    EXPERT_CATEGORIES,
    Answer,
    CacheEntry,
    ChatMessage,
    ChatRequest,
    Complexity,
    Envelope,
    ExpertTask,
    Feedback,
    FewShot,
    GraphTask,
    ImageRef,
    Plan,
    PlannedTask,
    Progress,
    ResearchTask,
    ToolTask,
    Usage,
    headers,
)
from moe_core.contracts.tools import TOOL_SPECS
from moe_core.knowledge.static_embedding import get_static_embedder
from moe_core.llm import exact_cache
from moe_core.llm.guardrails import GuardrailBook
from moe_core.llm.guardrails.inputs import check_input
from moe_core.llm.guardrails.quarantine import QuarantineStore
from moe_core.llm.inference import InferenceClient, InferenceError
from moe_core.llm.modes import get_mode
from moe_core.llm.templates import of_message
from moe_core.policy.egress import cache_record, may_cache, may_research
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import Bus, PermanentError
from moe_core.runtime.cancellation import RequestCancelled
from moe_core.runtime.observability.metrics import PLANNER_ROUTES, SEMANTIC_CACHE
from moe_core.stage.resources import Outcomes, Resources, stamped
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import CancelPolicy, Consumes, MemoPolicy, Notes, Stage
from planner import core, graph_tasks, research_tasks
from planner.augment import augment
from planner.complexity import ProtectedDomains, estimate, trivial_category, with_domains
from planner.egress_gate import EgressGate
from planner.egress_plan import keep_to_egress, offered_tools, scope_suffix
from planner.housekeeping import Housekeeping
from planner.learned_patterns import LearnedPatterns
from planner.modes import expert_history
from planner.plan_cache import CachedPlan, PlanCache, PlanRead
from planner.preflight import recognise
from planner.rescue import rescue
from planner.router import SemanticRouter
from planner.semantic_cache import Lookup, SemanticCache, cache_key, cache_scope, cacheable, cached_answer
from planner.settings import PlannerSettings
from planner.tool_catalogue import ToolCatalogue
from planner.vectors import Vectors
from planner.warm_paths import warm_paths

log = logging.getLogger(__name__)
HISTORY_TURNS = 6
T = TypeVar("T")
SOFT_STEP_TIMEOUT_S = 5.0  # a hung Chroma costs a request this much, then it is planned without the shortcut


class Outcome(BaseModel):
    """What the planner decided for one request: a plan, or (semantic cache hit) the answer itself."""

    plan: Plan | None = None
    answer: Answer | None = None


class Planner:
    """Routes in `_plan`, in order: (1) precision preflight, (2) semantic cache, (3) plan cache,
    (4) complexity estimate and semantic router, (5) the planner model; (6) a plan from (4) or (5) without a
    tool task gets the preflight's second look (planner.rescue)."""

    def __init__(self, settings: PlannerSettings, bus: Bus, inference: InferenceClient, redis: Redis,
                 vectors: Vectors | None, outcomes: Outcomes[Outcome]) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.outcomes = outcomes
        # what the planner model may choose: a request with images is the vision expert's before any routing
        # (`_plan`), so a text-only one never is (a trial under `make up` saw "Name three colours." go to vision)
        self.categories = [c for c in EXPERT_CATEGORIES if c != "vision"]
        self.tools = ToolCatalogue.from_settings(settings)
        self.vectors = vectors
        self.redis = redis
        self.cache = (SemanticCache(vectors, redis, settings, bus) if vectors and settings.semantic_cache_enabled
                      else None)
        threshold, margin = settings.router_distances()
        self.router = (SemanticRouter(vectors, threshold, margin, embedder=get_static_embedder()
                                      if settings.router_embedding == "static" else None)
                       if vectors and settings.router_enabled else None)
        self.plan_cache = (PlanCache(redis, settings.topic_namespace, settings.plan_cache_ttl_s)
                           if settings.plan_cache_enabled else None)
        self.guard = GuardrailBook.from_settings(settings)  # input rules (moe_core.llm.guardrails.inputs)
        self.journal = QuarantineStore(redis, settings.topic_namespace, settings.guardrail_retention_s)
        self.protected = ProtectedDomains.load(settings.keywords_path(), settings.planner_never_trivial_domains)
        self.patterns = LearnedPatterns(redis, settings.topic_namespace, settings.planner_patterns_retention_days)
        self.housekeeping = Housekeeping(settings, inference, bus)  # a client's chores: one small-model call
        # where a request's data class may go (issue 50), among the servers in force (the console's changes too)
        # every tool of the registry is decided, not only those this planner offers: Envelope.egress permits the
        # tools as `tool:*` minus the denied ones, so a tool left undecided here (disabled at the planner, enabled
        # at mcp, named by a chain's step) would pass as permitted
        self.egress = EgressGate(settings, lambda: inference.config, TOOL_SPECS)

    async def answer_housekeeping(self, request: ChatRequest) -> None:
        gated = await self.egress.check(request, ("housekeeping",))
        if gated.refusal is not None:  # nothing was sent: its record goes out with it (`handle`)
            await self.bus.publish_all([*([(gated.record, self.bus.topics.audit)] if gated.record else []),
                                        (gated.refusal, self.bus.topics.answers)])
            return
        if gated.record is not None:  # before the housekeeping model's call
            await self.bus.publish(gated.record, self.bus.topics.audit)
        await self.housekeeping.handle(gated.request)

    async def handle(self, request: ChatRequest) -> None:
        checked = check_input(self.guard, request, core.last_user_question(request.messages))  # before any model
        # the request's audit records (the input guard's, the egress decision) go out with its outcome: one Produce
        # request, not one each (issue 52). No consumer needs them on the bus first (the record files each as it
        # comes, in no order across topics); when the planning fails or is cancelled, after the planner model may
        # have been called, they go out on their own; a redelivered request is decided and recorded again
        records: list[tuple[Envelope, str]] = [] if checked.audit is None else [(checked.audit, self.bus.topics.audit)]
        if checked.decision is not None:  # an input redaction: the tenant's self-correction journal
            await self.journal.put_first(checked.decision)
        request, because = checked.request, None
        if checked.refusal is None:  # where its class may go, before any model is called
            gated = await self.egress.check(request)
            if gated.record is not None:
                records.append((gated.record, self.bus.topics.audit))
                because = gated.record.details.get("class_from", {})
            if gated.refusal is not None:
                await self.bus.publish_all([*records, (gated.refusal, self.bus.topics.answers)])
                return
            request = gated.request
        try:  # a client that went away stops its planning (and the planner model's call) too
            # writes nothing reads before the plan is out (the model call's budget give-back, the plan cache, the
            # cache's pending entry, the question's vector) go with the stored outcome: one round trip, before the
            # publish (moe_core.runtime.redis_batch)
            # the plan cache's read goes with the stored outcome's and the Cancel mark's: one round trip
            read = self._plan_read(request) if checked.refusal is None else None
            async with redis_batch.deferring(self.redis):
                outcome, _ = await self.outcomes.once(
                    request.response_id, lambda: self._decide(request, checked.refusal, read), message=request,
                    also=read.queue if read is not None else None)
        except RequestCancelled:
            await self.bus.publish_all(records)
            log.info("request cancelled before it was planned: only its audit records published")
            return
        except Exception:
            await self.bus.publish_all(records)
            raise
        if outcome.answer is not None:
            refused = outcome.answer.finish_reason == "content_filter"
            hit = [] if because is None or not outcome.answer.cache_hit else [(cache_record(  # its egress record
                outcome.answer, request.data_class or "", because, "semantic", "service:planner"),
                self.bus.topics.audit)]
            await self.bus.publish_all([*records, *hit, (outcome.answer, self.bus.topics.answers), self._progress(
                request, "guardrail" if refused else "cache_hit", outcome.answer.cache_key or "")])
            return
        plan = outcome.plan
        if plan is None:
            await self.bus.publish_all(records)
            raise PermanentError("stored planner outcome has neither plan nor answer")
        history = expert_history(request, HISTORY_TURNS, direct=plan.is_direct())
        streamed = streams_answer(request, plan, self.guard.guards(request.tenant_id))
        # the merger keeps results that arrive before their plan: plan and tasks go out side by side
        await self.bus.publish_all([
            *records,
            (plan, self.bus.topics.plans),
            *((task_message(request, plan, task, history, streamed), self.bus.topics.for_task_kind(task.kind))
              for task in plan.tasks),
            self._progress(request, "planned", ", ".join(t.category for t in plan.tasks)),
        ])

    async def _decide(self, request: ChatRequest, refusal: Answer | None = None,
                      read: PlanRead | None = None) -> Outcome:
        decided = refusal or await self._plan(request, read)
        run = (self.settings.service_name, self.bus.config_digest)  # versions stored with the outcome
        if isinstance(decided, Answer):
            return Outcome(answer=stamped(decided, *run))
        if decided.source == "preflight":  # exact: nothing to add
            return Outcome(plan=stamped(keep_to_egress(decided, request), *run))
        # a cached plan or a mode's research its decision denies is left out (planner.egress_plan)
        return Outcome(plan=stamped(keep_to_egress(augment(decided, request, self.settings), request), *run))

    async def start(self) -> None:
        """After the runtime read the cache topic up to its end (Consumes.from_start): the index is complete."""
        if self.cache is not None:
            self.cache.index.loaded.set()
            log.info("semantic cache index: %d entries from %d messages", len(self.cache.index),
                     self.cache.index.applied)
        await self.egress.check_start()  # a tenant's class with no permitted server: no start
        await self.warm()

    async def close(self) -> None:
        await self.egress.close()

    def _progress(self, request: ChatRequest, event: str, detail: str) -> tuple[Progress, str]:
        return Progress(**request.child_fields(), stage="planner", event=event, detail=detail), self.bus.topics.progress

    async def _plan(self, request: ChatRequest, read: PlanRead | None = None) -> Plan | Answer:
        question = core.last_user_question(request.messages)
        base = {**request.child_fields(), "mode": request.mode, "question": question, "params": request.params}
        if images_of(request):  # the vision expert looks at them; no cache: the text alone is not the question
            PLANNER_ROUTES.labels("vision").inc()
            return Plan(**base, tasks=[_single("vision", question.strip() or "Describe the image.")], source="router")
        # only the tools its egress decision permits are offered, here and below (planner.egress_plan)
        task = recognise(question, offered_tools(self.tools, request))  # (1) precision preflight: no model call
        if task is not None:
            PLANNER_ROUTES.labels("preflight").inc()
            log.debug("preflight: %s %s", task.tool, task.args)
            return Plan(**base, tasks=[task], source="preflight", complexity="trivial")
        scope = cache_scope(request) if self.cache else None
        lookup = Lookup()
        if self.cache and scope:  # (2) semantic cache
            found = await _soft(self.cache.lookup(scope, question), "semantic cache lookup")
            lookup = found or lookup
            if lookup.hit is not None and not exact_cache.fits(request, lookup.hit.entry()):
                log.info("semantic cache hit %s not used: longer than max_tokens or holds a stop sequence",
                         lookup.hit.key)
                lookup = Lookup(few_shot=lookup.few_shot, reason="unfit")
            if lookup.hit is not None:
                PLANNER_ROUTES.labels("cache_hit").inc()
                log.debug("semantic cache hit %s (distance %.3f)", lookup.hit.key, lookup.hit.distance)
                return cached_answer(request, lookup.hit, question)
        plan = await self._route(request, question, base, read)
        key = None
        if self.cache and scope and may_cache(request):  # a protected class's answer is kept for nobody
            key = cache_key(scope, question, request.response_id)
            await self.cache.remember(key, scope, request, question)  # also shares the question's vector
        elif self.vectors is not None and (graph_tasks.needs_graph(plan, self.settings)
                                           or any(t.kind == "graph" for t in plan.tasks)):  # for graph-rag
            await _soft(self.vectors.share(self.redis, self.settings.topic_namespace, question), "question vector")
        return plan.model_copy(update={"few_shot": few_shot(request, lookup), "cache_key": key})

    async def _route(self, request: ChatRequest, question: str, base: dict[str, Any],
                     read: PlanRead | None = None) -> Plan:
        complexity = with_domains(estimate(question, self.settings.planner_trivial_max_words), question,
                                  self.protected)  # a protected domain's question is never trivial
        if self.plan_cache and not request.replay_of:  # (3) plan cache (a replay plans afresh)
            cached = await self.plan_cache.get(self._plan_scope(request), question, read)
            if cached is not None:
                PLANNER_ROUTES.labels("plan_cache").inc()
                return Plan(**base, tasks=cached.tasks, source="plan_cache", complexity=cached.complexity)
        route = None  # (4) semantic router; complex questions always go to the planner model
        if self.router and complexity != "complex":
            route = await _soft(self.router.route(question), "semantic router")
            if route is not None and route.category not in self.categories:  # vision: images only (`_plan`)
                route = None
        if route is not None and route.clear:
            PLANNER_ROUTES.labels("router").inc()
            return self._rescued(request, Plan(**base, tasks=[_single(route.category, question)], source="router",
                                      complexity=complexity))
        if complexity == "trivial" and self.settings.planner_skip_trivial:
            category = trivial_category(question, (route.category, route.distance) if route else None,
                                        self.settings.router_distances()[0], self.categories)
            PLANNER_ROUTES.labels("trivial").inc()
            return self._rescued(request, Plan(**base, tasks=[_single(category, question)], source="router",
                                      complexity="trivial"))
        plan = self._rescued(request, await self._model_plan(request, question, base, complexity))  # (5) the model
        PLANNER_ROUTES.labels(plan.source).inc()
        if plan.source == "llm" and self.plan_cache and not request.replay_of:
            await self.plan_cache.put(self._plan_scope(request), question, CachedPlan(
                tasks=plan.tasks, complexity=complexity, planner_model=plan.planner_model))
        return plan

    def _plan_read(self, request: ChatRequest) -> PlanRead | None:
        """The plan cache's read of this request's question (`_route` uses it), when the route may consult it."""
        if self.plan_cache is None or request.replay_of:
            return None
        return self.plan_cache.read(self._plan_scope(request), core.last_user_question(request.messages))

    def _plan_scope(self, request: ChatRequest) -> str:
        return plan_scope(request) + scope_suffix(self.tools, request)  # a plan without denied tools: for its like

    def _rescued(self, request: ChatRequest, plan: Plan) -> Plan:
        """(6) Tool tasks the preflight missed, found in the plan's instructions or the question's clauses
        (planner.rescue) before the question goes to an expert alone."""
        tasks = rescue(plan.question, plan.tasks, offered_tools(self.tools, request), self.settings.planner_max_tasks)
        if tasks is plan.tasks:
            return plan
        log.info("tool task rescued: %s", [(t.tool, t.args) for t in tasks if t.kind == "tool"])
        return plan.model_copy(update={"tasks": tasks})

    async def _model_plan(self, request: ChatRequest, question: str, base: dict[str, Any],
                          complexity: Complexity) -> Plan:
        max_tasks = self.settings.planner_max_tasks
        base = {**base, "complexity": complexity}
        # the tool catalogue (~870 tokens) only for questions a precision tool could help with
        # (and only the tools and research its egress decision permits: planner.egress_plan)
        offered = offered_tools(self.tools, request)
        tools = offered if offered.names and offered.may_help(question) else None
        # a web search may be planned only where current facts may matter (planner.research_tasks), like the tools
        research = research_tasks.offered(question, self.settings) and may_research(request.egress)
        learned = await self._learned(request)
        base = {**base, "learned_patterns": learned}  # on the record: a replay as recorded uses these again
        try:
            completion = await self.inference.chat(
                self.inference.config.for_role("planner", of_message(request)),  # the request's template first
                core.planner_messages(question, self.categories, max_tasks, tools, research, learned),
                max_tokens=self.settings.planner_max_tokens,
                temperature=0.0,
                json_schema=core.plan_schema(self.categories, max_tasks, tools, research),
                schema_name="plan",
                timeout_s=min(self.settings.planner_timeout_s, max(request.remaining_seconds(), 0.1)),
            )
        except InferenceError as exc:
            log.warning("planner model failed, using the fallback plan: %s", exc)
            return Plan(**base, tasks=core.fallback_plan(question), source="fallback")
        tasks = core.sanitise(completion.content, self.categories, max_tasks, tools, research)
        usage: Usage = completion.usage
        if not tasks:
            log.info("planner output had no usable task, using the fallback plan")
            return Plan(**base, tasks=core.fallback_plan(question), source="fallback",
                        planner_model=completion.model, usage=usage)
        return Plan(**base, tasks=tasks, source="llm", planner_model=completion.model, usage=usage)

    async def _learned(self, request: ChatRequest) -> list[str]:
        """The learned patterns the planner model's prompt names: the tenant's own (planner.learned_patterns), or in
        a replay as recorded the ones the original plan named (ChatRequest.recorded_patterns)."""
        if request.recorded_patterns is not None:
            return list(request.recorded_patterns)
        found = await _soft(self.patterns.hints(request.tenant_id, self.settings.planner_learned_patterns),
                            "learned patterns")
        return found or []

    async def on_answer(self, answer: Answer) -> None:
        """Store good answers in the semantic cache (group consumer of `answers`): the cache topic, the exact repeat,
        then Chroma's copy (planner.semantic_cache.SemanticCache.store). A cache hit, this planner's
        semantic one or the edge's exact repeat, publishes no ingest event: graph-ingest learned the answer when it
        was first given and skips a hit's event (issue 52: a Kafka message, a record entry and a consume per hit,
        for nothing); the record keeps the hit's Answer."""
        if self.cache is not None and cacheable(answer):
            await _transient(self.cache.store(answer))

    async def on_cache_entry(self, entry: CacheEntry) -> None:
        """Every message of the cache topic (group-less, from the start): this replica's index."""
        if self.cache is not None:
            self.cache.on_entry(entry)

    async def on_feedback(self, feedback: Feedback) -> None:
        """Negative feedback flags the answer's cache entry; positive feedback teaches a planner pattern."""
        if self.cache is not None:
            await _transient(self.cache.flag(feedback))
        await self.patterns.record(feedback)

    async def warm(self) -> None:
        """Load the embedding model and seed the router's prototypes before the first request; run the per-question
        paths once (planner.warm_paths: what they load lazily is then in the start level of the memory)."""
        warm_paths(self.tools, self.protected, self.settings.planner_trivial_max_words)
        if self.vectors is not None and self._runs_minilm():
            await _soft(self.vectors.warm(), "embedding warm-up")
        if self.cache is not None:
            await _soft(self.cache.warm(), "cache embedding warm-up")
        if self.router is not None:
            await _soft(self.router.seed(), "router seeding")

    def _runs_minilm(self) -> bool:
        """Whether a request may embed with MiniLM here (else the model is never loaded by the planner)."""
        s = self.settings
        return ((self.cache is not None and s.cache_embedding == "minilm")
                or (self.router is not None and s.router_embedding == "minilm"))


def few_shot(request: ChatRequest, lookup: Lookup) -> list[FewShot]:
    """The plan's few-shot examples: the semantic cache's, or in a replay as recorded (which reads no cache) the
    ones the original plan carried (ChatRequest.recorded_few_shot), so the experts and the judge see them again."""
    return lookup.few_shot if request.recorded_few_shot is None else list(request.recorded_few_shot)


def _single(category: str, question: str) -> PlannedTask:
    return PlannedTask(task_id="t1", category=category, instruction=question[: core.MAX_INSTRUCTION_CHARS])


async def _soft(step: Awaitable[T], what: str) -> T | None:
    """Cache and router are shortcuts: when Chroma fails or hangs, log it and plan without them."""
    try:
        async with asyncio.timeout(SOFT_STEP_TIMEOUT_S):
            return await step
    except Exception as exc:
        log.warning("%s failed, continuing without it: %s: %s", what, type(exc).__name__, exc)
        SEMANTIC_CACHE.labels("error", type(exc).__name__).inc()
        return None


async def _transient(step: Awaitable[Any]) -> None:
    """A Chroma outage while writing is transient: the message is redelivered, not dead-lettered."""
    try:
        await step
    except httpx.TransportError as exc:
        raise ConnectionError(f"Chroma unreachable: {exc}") from exc


def plan_scope(request: ChatRequest) -> str:
    """The plan cache's scope: the mode, and the expert template (its own planner model plans for it); a tenant's
    own template by its models' digest too (another tenant's of the same name plans with other models)."""
    scope = f"{request.mode}@{request.template}" if request.template else request.mode
    return f"{scope}#{request.template_models.digest()}" if request.template_models is not None else scope


def images_of(request: ChatRequest) -> list[ImageRef]:
    """The images the user sent (references: the bytes stay in the gateway's image store)."""
    return [ref for m in request.messages if m.role == "user" for ref in m.images]


def streams_answer(request: ChatRequest, plan: Plan, guarded: bool) -> bool:
    """Whether the plan's one expert streams its answer to the client as the model writes it
    (ExpertTask.stream_answer): a direct plan of a live request, whose answer the merger's fast path passes on as
    the expert wrote it. Not when the critic reviews the category, the tenant has output guardrails (`guarded`:
    either sees the answer before the client), the mode has no fast path (its judge writes every answer) or shows
    the plan in front of the answer. With tools (agents), only in a mode that shapes nothing but whitespace: an
    answer that is a tool call keeps its text as the model wrote it, unshaped (the merger's tools path)."""
    mode = get_mode(request.mode)
    reshaped = mode.code_only or mode.sections or bool(mode.word_limit)
    return (request.live and plan.is_direct() and not guarded and not (request.tools and reshaped)
            and mode.fast_path and not mode.show_plan and not any(t.category in CRITIC_CATEGORIES for t in plan.tasks))


def task_message(request: ChatRequest, plan: Plan, task: PlannedTask, history: list[ChatMessage],
                 stream_answer: bool = False) -> Envelope:
    """The message a planned task becomes on its kind's topic (`stream_answer`: streams_answer's decision)."""
    fields = {**request.child_fields(), "task_id": task.task_id, "question": plan.question}
    if task.kind == "tool":
        return ToolTask(**fields, tool=task.tool or task.category, args=task.args)
    if task.kind == "research":
        queries = task.args.get("queries") or [task.instruction]
        return ResearchTask(**fields, queries=[str(q) for q in queries], category=task.category)
    if task.kind == "graph":
        return GraphTask(**fields, metadata_filters=plan.metadata_filters, asked_by=request.asked_by)
    return ExpertTask(**fields, category=task.category, instruction=task.instruction, history=history,
                      params=request.params, mode=request.mode, few_shot=_expert_few_shot(plan), user=request.user,
                      tools=request.tools, tool_choice=request.tool_choice, direct=plan.is_direct(),
                      images=images_of(request) if task.category == "vision" else [], stream_answer=stream_answer)


def _expert_few_shot(plan: Plan) -> list[FewShot]:
    """The semantic cache's examples go to the judge once per request (Plan.few_shot), not into every
    expert's prompt; only a plan of one expert task, which may end on the fast path without a judge, hands
    them to its expert."""
    return plan.few_shot if sum(t.kind == "expert" for t in plan.tasks) == 1 else []


def build(res: Resources) -> Planner:
    settings: PlannerSettings = res.settings
    vectors = res.extra.get("vectors")
    if vectors is None and (settings.semantic_cache_enabled or settings.router_enabled):
        vectors = Vectors(settings.chroma_url, settings.embedding_cache_size)
    return Planner(settings, res.bus, res.inference, res.redis, vectors, res.outcomes())


def _caching(planner: Planner) -> bool:
    return planner.cache is not None


STAGE = Stage(
    name="planner",
    settings=PlannerSettings,
    build=build,
    summary="Requests -> a plan and its typed tasks (precision preflight, semantic cache, plan cache, "
            "router, planner model); a semantic cache hit answers at once.",
    consumes=(Consumes("requests", ChatRequest, "handle"),
              Consumes("housekeeping", ChatRequest, "answer_housekeeping",
                       description="a client's housekeeping request (routed by the gateway): one small-model call"),
              # no request waits for the write-behind: its fetch lingers (MOE_KAFKA_LINGER_MS) and gathers several
              # answers, instead of one fetch per answer (bench.hit_skip_costs, a hit's Answer: 0.76 -> 0.06 ms of CPU
              # at 150 a second, 1.73 (parsed) -> 0.19 at 20 a second)
              Consumes("answers", Answer, "on_answer", when=_caching, models=False, skip_marked=(headers.CACHE_HIT,),
                       linger=True,
                       description="good answers fill the cache (a cache hit's Answer, marked, is skipped unparsed)"),
              Consumes("feedback", Feedback, "on_feedback", models=False,
                       description="negative feedback flags a cache entry, positive teaches a planner pattern"),
              Consumes("cache_entries", CacheEntry, "on_cache_entry", group=False, from_start=True, when=_caching,
                       models=False, description="every replica's in-memory cache index, rebuilt from the start")),
    publishes=("plans", "tasks_expert", "tasks_mcp", "tasks_research", "tasks_graph", "answers", "progress",
               "cache_entries", "audit"),
    needs=("redis", "inference"),
    memo=MemoPolicy("planner:outcome", Outcome, ttl="plan_ttl_s"),
    cancel=CancelPolicy(),
    notes=Notes(keeps="Redis `planner:outcome:<response_id>` (plan or cache-hit memo, TTL "
                    "`MOE_PLAN_TTL_S` 3600 s), `planner:plancache:*`, `planner:cachectx:*`, "
                    "`cache:exact:<ns>:*` (exact repeats for the gateway); topic `<ns>.cache-"
                    "entries.v1` (the semantic cache's entries, compacted; every replica's in-"
                    "memory index is read from it) with Chroma `moe-cache-static-<ns>` "
                    "(`moe-cache-<ns>` with `MOE_CACHE_EMBEDDING=minilm`) as its copy "
                    "written by the answer's handler, `moe-router-<hash>` (router prototypes)",
                dedupe="`Memo` keyed by `response_id` (Redis `SET NX`, first writer wins)",
                redelivery="republishes the stored plan and the same tasks (or the same cache-hit"
                           " answer) instead of planning again; cache writes are upserts by "
                           "`cache_key`, flags are idempotent"),
)


def create_app(settings: PlannerSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, inference, redis, vectors, manage_broker."""
    return create_stage_app(STAGE, settings, **overrides)
