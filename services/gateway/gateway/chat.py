"""The gateway's side of a request, whatever the API: validate, publish, wait, cancel when abandoned."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from starlette.requests import Request

from gateway import client_profiles, template_select
from gateway.feedback import AnswerRecorder
from gateway.metering import Metering
from gateway.pending import Event, Pending
from gateway.session import ClientGone, RequestRun, answer_error
from gateway.settings import GatewaySettings
from gateway.stream_registry import StreamRegistry
from moe_core.access.edge_hit import RecordHead, Stale
from moe_core.access.keystore import ApiKey
from moe_core.access.request_auth import current_key
from moe_core.access.settlement import Hold
from moe_core.contracts import (
    Answer,
    AuditEvent,
    Cancel,
    ChatMessage,
    ChatRequest,
    GenerationParams,
    TemplateModels,
    deadline_in,
)
from moe_core.llm.client_profiles import ClientProfile
from moe_core.llm.exact_cache import ExactAnswers, answer_of
from moe_core.llm.guardrails import GuardrailBook
from moe_core.llm.guardrails.inputs import check_input
from moe_core.llm.housekeeping import recognise
from moe_core.llm.input_limits.images import ImageInput, ImageIntake
from moe_core.llm.model_map import resolve
from moe_core.llm.modes import MODES
from moe_core.policy.classes import ClassFile, declared_class
from moe_core.policy.egress import cache_record
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability import bind_response_id
from moe_core.runtime.observability.metrics import (
    GATEWAY_CANCELLED,
    GATEWAY_EXACT_CACHE,
    GATEWAY_LATENCY,
    GATEWAY_REQUESTS,
)
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.redelivery import TOO_LARGE_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shape:
    """What a request's client profile decides (gateway.client_profiles), and the overlay it was chosen from:
    (its key, its SHA-1) to check in the limits script, None when read just now."""

    mode: str
    model_id: str
    profile: ClientProfile | None
    template: str | None
    template_models: TemplateModels | None
    overlay: tuple[str, str] | None


class ProtocolRequest(Protocol):
    """What every protocol's request model gives the chat flow (openai_api, anthropic_api, responses_api)."""

    model: str
    stream: bool

    @property
    def user(self) -> str | None: ...
    def params(self) -> GenerationParams: ...
    def tool_defs(self) -> list[dict[str, Any]]: ...
    def chat_tool_choice(self) -> str | dict[str, Any] | None: ...


class ChatService:
    def __init__(self, settings: GatewaySettings, bus: Bus, pending: Pending, *, exact: ExactAnswers | None = None,
                 answers: AnswerRecorder | None = None,
                 metering: Metering | None = None, images: ImageIntake | None = None,
                 templates: template_select.EdgeTemplates,
                 profiles: client_profiles.LiveProfiles | None = None) -> None:
        """exact: answer exact repeats of cached questions from Redis; answers: such an answer recorded for
        feedback before the client sees it (a metered one by the script that finds it); metering: the
        key's limits and budgets (reserved here, settled on the Answer). images: checks and stores a request's
        images (moe_core.llm.input_limits.images); templates: the named expert templates (checked at start-up)."""
        self.images = images
        self.metering = metering
        self.settings = settings
        self.bus = bus
        self.pending = pending
        self.exact = exact
        self.answers = answers
        self._background: set[asyncio.Task[None]] = set()
        self.streams: StreamRegistry | None = None  # resumable streams (gateway.resume): Cancel waits its grace
        self.templates = templates
        self.profiles = profiles  # the client profiles with the console's changes (None: the settings' only)
        # the tenants' input rules, read here only to keep an exact repeat from stepping around them (_may_repeat)
        self.guard = GuardrailBook.from_settings(settings)
        self.classes = ClassFile(settings.classes_path())  # a key's class, the client's header (declared_class)

    async def open(self, body: ProtocolRequest, messages: list[ChatMessage], tenant_id: str, http: Request,
                   timeout_s: float | None, images: list[ImageInput] | None = None,
                   messages_param: str = "messages") -> RequestRun:
        """Validate and publish a protocol's request, its messages as the chat flow has them (`images` collected
        from them); the returned run must be closed when the connection ends. timeout_s: a client's shorter
        deadline (X-Request-Timeout); never longer than configured. The X-MOE-Template header names a template
        (gateway.template_select: the model id's @suffix comes first). messages_param: the field an error about the
        messages names (the Responses API's is `input`)."""
        client_model = body.model
        key = current_key.get()  # the verified key of this request (moe_core.access.request_auth)
        # a metered request's profiles as last seen, checked in its limits script (no round trip of their own)
        shape = await self._shape(body, key, tenant_id, http, fresh=self.metering is None or key is None)
        messages = await self._checked(messages, images, messages_param)
        rid = uuid.uuid4().hex
        while True:
            request = self._request(body, shape, key, messages, tenant_id, http, timeout_s, rid)
            chore = (recognise(request) if self.settings.housekeeping_enabled and request.params.response_format
                     is None else None)  # a client's own chore (a structured one takes the pipeline: its judge
            # writes JSON)
            with bind_response_id(rid):  # limits and budgets: 429 before anything enters the fleet; an exact repeat
                reserved = await self._reserve(key, request, client_model, exact=not chore, overlay=shape.overlay)
            if not isinstance(reserved, Stale):
                break
            assert self.profiles is not None  # the console changed the profiles: the request shaped again, once
            shape = await self._shape_with(body, key, tenant_id, http, self.profiles.saw(reserved.overlay), None)
        hit, held = reserved
        profile = shape.profile
        queue = self.pending.open(rid)
        await self._enter(request, queue, (hit, held, self._cache_record(request, hit)) if hit else None, chore)
        run = RequestRun(request, queue, grace_s=self.settings.deadline_grace_s,
                         keepalive_s=self.settings.keepalive_s, on_close=self._closed)
        run.profile = profile
        if hit is not None and held is not None and self.metering is not None:  # settled once the client has it
            run.after_response = partial(self._after_hit, hit, held)
        return run

    async def _shape(self, body: ProtocolRequest, key: ApiKey | None, tenant_id: str, http: Request,
                     fresh: bool) -> Shape:
        """The request's profile and what it decides, from the profiles read now (`fresh`) or as last seen (the
        limits script checks them); a request those refuse is shaped again with the profiles read now."""
        if self.profiles is None:
            return await self._shape_with(body, key, tenant_id, http, self.settings.client_profiles, None)
        if fresh:
            return await self._shape_with(body, key, tenant_id, http, await self.profiles.current(), None)
        profiles, overlay = self.profiles.known()
        try:
            return await self._shape_with(body, key, tenant_id, http, profiles, overlay)
        except OpenAIError:  # e.g. a profile the console just added, named by the client
            return await self._shape_with(body, key, tenant_id, http, await self.profiles.current(), None)

    async def _shape_with(self, body: ProtocolRequest, key: ApiKey | None, tenant_id: str, http: Request,
                          profiles: list[ClientProfile], overlay: tuple[str, str] | None) -> Shape:
        """The X-MOE-Template header names a template (gateway.template_select: the model id's @suffix comes
        first); the key must allow the mode."""
        client_model = mode = body.model
        found = resolve(mode, self.settings.model_map)  # a client's own id -> our mode (@template)
        if found is None:
            raise OpenAIError(404, f"The model '{mode}' does not exist", param="model", code="model_not_found")
        mode, model_id, named = found
        profile = client_profiles.choose(profiles, key)  # per-client defaults
        if profile is not None and profile.mode and model_id not in MODES and named is None:  # a client's own id
            mode = profile.mode
        fallback = (key.default_template if key else None) or (profile.template if profile else None)
        template, template_models = await self.templates.choose(tenant_id, named, template_select.header_template(
            http), fallback)
        if key is not None and not (key.allows(mode) or key.allows(client_model) or key.allows(model_id)):
            raise OpenAIError(403, f"This API key may not use the model '{client_model}'.", "permission_error",
                              param="model", code="model_not_allowed")
        return Shape(mode, model_id, profile, template, template_models, overlay)

    def _request(self, body: ProtocolRequest, shape: Shape, key: ApiKey | None, messages: list[ChatMessage],
                 tenant_id: str, http: Request, timeout_s: float | None, rid: str) -> ChatRequest:
        params, tools = body.params(), body.tool_defs()
        cap, is_default = client_profiles.token_cap(shape.profile, shape.mode, bool(tools),
                                                    self.settings.tool_max_tokens, self.settings.reasoning_max_tokens)
        params = client_profiles.capped(params or GenerationParams(), cap, is_default)
        limit = self.settings.request_timeout_s
        return ChatRequest(
            response_id=rid, tenant_id=tenant_id, deadline_at=deadline_in(min(timeout_s or limit, limit)),
            mode=shape.mode, messages=messages, params=params, stream=body.stream, live=body.stream,
            user=template_select.affinity_user(body.user, key),  # sticky servers: the client's user, else the
            tools=tools or [], tool_choice=body.chat_tool_choice(), template=shape.template,  # principal
            template_models=shape.template_models,
            asked_by=key.principal if key is not None else None,  # the principal id, never the key (graph gaps)
            data_class=declared_class(self.classes.current(), key.id if key else None, http.headers,
                                      key.data_class if key else None),
        )

    async def _checked(self, messages: list[ChatMessage], images: list[ImageInput] | None,
                       messages_param: str) -> list[ChatMessage]:
        """The messages with their images stored beside the bus (the messages carry references:
        moe_core.llm.input_limits.images), refused when too long or when no user message asks anything."""
        if images:
            if self.images is None:
                raise OpenAIError(400, "images are not accepted by this gateway", param=messages_param)
            messages = await self.images.resolve(messages, images)
        if sum(len(m.content) for m in messages) > self.settings.max_prompt_chars:
            raise OpenAIError(400, f"the messages are too long: more than {self.settings.max_prompt_chars} characters "
                                   "(MOE_MAX_PROMPT_CHARS)", param=messages_param, code="context_length_exceeded")
        if not any(m.role == "user" and (m.content.strip() or m.images) for m in messages):
            raise OpenAIError(400, "at least one non-empty user message is required (tool results alone ask nothing: "
                                   "send the conversation they belong to, or its previous_response_id)",
                              param=messages_param, code="invalid_value")
        return messages

    async def _enter(self, request: ChatRequest, queue: asyncio.Queue[Event],
                     hit: tuple[Answer, Hold | None, AuditEvent | None] | None, chore: str | None) -> None:
        """The request into the fleet: an exact repeat's answer queued once it is on the record, a client's chore
        to the planner past the pipeline, else the requests topic; on any failure its queue and its hold are
        released."""
        rid = request.response_id
        try:
            with bind_response_id(rid):
                if hit is not None:
                    self.pending.answered_here(rid)  # its Answer, recorded next, is not read back from the bus
                    await self._record_hit(hit[0], hit[2], hit[1])
                    queue.put_nowait(hit[0])
                elif chore:  # past the pipeline: the planner answers it with one small-model call
                    await self.bus.publish_all([(request, self.bus.topics.housekeeping),
                                                (housekeeping_audit(request, chore), self.bus.topics.audit)])
                else:
                    try:
                        await self.bus.publish(request, self.bus.topics.requests)
                    except TOO_LARGE_ERRORS as exc:  # the input guard's estimate was not enough
                        raise OpenAIError(413, f"the request is larger than the fleet's bus carries: {exc}",
                                          code="request_too_large") from None
        except BaseException:
            self.pending.close(rid)
            if self.metering is not None and hit is not None and hit[1] is not None:
                records = self.answers.records if self.answers is not None else None
                self.metering.release_hit(rid, hit[1], records.key(rid) if records else None)  # not answered:
                # given back, no charge, no record
            elif self.metering is not None:
                self.metering.release(rid, abandoned=False, published=False)
            raise

    async def _reserve(self, key: ApiKey | None, request: ChatRequest, model: str, exact: bool,
                       overlay: tuple[str, str] | None = None) -> tuple[Answer | None, Hold | None] | Stale:
        """The request's limits and budgets (gateway.metering) and, for an exact repeat of a cached question, its
        answer and its record for feedback: one Redis round trip for all of them when the request is metered
        (moe_core.access.edge_hit), with the check of the profiles it was shaped with (`overlay`; Stale: shape it
        again). A hit's usage is settled after the reply (its hold)."""
        lookup = self.exact.lookup(request) if exact and self.exact is not None and not any(
            m.images for m in request.messages) and self._may_repeat(request) else None  # with images the text
        # alone is not the question
        if self.metering is None or key is None:
            hit = await self._exact_hit(request) if lookup is not None else None
            return hit, None
        record = None
        if lookup is not None and self.answers is not None:  # written by the script that finds the entry
            records = self.answers.records
            record = RecordHead(*records.hit_head(request.response_id, request.tenant_id, lookup[1]), records.ttl_s)
        found = await self.metering.reserve(key, request, model, lookup[0] if lookup is not None else None,
                                            record=record, overlay=overlay)
        if isinstance(found, Stale):
            return found
        if found is None or lookup is None:
            if lookup is not None:
                GATEWAY_EXACT_CACHE.labels("miss").inc()
            return None, None
        answer = answer_of(request, found.entry, lookup[1])
        forget = record.key if record is not None else None
        if answer is None:  # a damaged entry: a miss after all, reserved as one
            await self.metering.withdraw_hit(request.response_id, found.hold, forget)
            GATEWAY_EXACT_CACHE.labels("miss").inc()
            await self.metering.reserve(key, request, model)
            return None, None
        GATEWAY_EXACT_CACHE.labels("hit").inc()
        return answer, found.hold

    def _may_repeat(self, request: ChatRequest) -> bool:
        """Whether an exact repeat may be answered here: the tenant's input rules (moe_core.llm.guardrails.inputs)
        pass the request as it is. A rule that blocks or redacts it, or a check that fails, sends it on to the
        planner, which applies the rules in force now and audits the decision: a rule added after the first answer
        is not stepped around by asking the same question again."""
        checked = check_input(self.guard, request, "")
        return checked.refusal is None and checked.request is request

    async def _exact_hit(self, request: ChatRequest) -> Answer | None:
        """An exact repeat of a cached question, unmetered (internal use): one read. Redis trouble is a miss."""
        assert self.exact is not None
        try:
            hit = await self.exact.answer(request)
        except Exception as exc:  # the fleet answers it the usual way
            log.warning("exact-repeat lookup failed: %s", exc)
            GATEWAY_EXACT_CACHE.labels("error").inc()
            return None
        if hit is None:
            GATEWAY_EXACT_CACHE.labels("miss").inc()
            return None
        GATEWAY_EXACT_CACHE.labels("hit").inc()
        if self.answers is not None:  # what a rating needs, before the client sees the answer
            await self.answers.record_quietly(hit)
        return hit

    def _cache_record(self, request: ChatRequest, hit: Answer) -> AuditEvent | None:
        """An exact repeat's egress record: its class (the tenant's, template's and what the edge declared, as the
        planner decides it) and the cache entry served; nothing was sent anywhere. None: egress not enforced."""
        if not self.settings.egress_enforced:
            return None
        classed = self.classes.current().of_request(request.tenant_id, request.template, request.data_class)
        return cache_record(hit, classed.name, classed.because, "exact", "service:gateway")

    async def _record_hit(self, answer: Answer, record: AuditEvent | None, held: Hold | None) -> None:
        """An exact repeat's Answer on `answers` (the record, learning: the merger's ingest event of a cache hit)
        with its egress record and its usage (a metered hit: gateway.metering.hit_usage), one wait for the broker
        before the client has it: an answer served is an answer recorded and charged. The broker unreachable: a
        503, the request given back."""
        topics = self.bus.topics
        usage = (self.metering.hit_usage(answer.response_id, held) if self.metering is not None and held is not None
                 else None)
        try:
            await self.bus.publish_all([*([(record, topics.audit)] if record is not None else []),
                                        (answer, topics.answers), *([(usage, topics.usage)] if usage else [])])
        except Exception as exc:
            log.error("exact repeat not answered: its answer could not be recorded: %s", exc)
            raise OpenAIError(503, "The answer cannot be recorded right now; try again shortly.", "server_error",
                              code="record_unavailable") from None

    async def _after_hit(self, answer: Answer, held: Hold) -> None:
        """After the reply to an exact repeat: its hold finished (off the response's path, never lost: a failure
        leaves it to the control plane's sweeper)."""
        assert self.metering is not None
        with bind_response_id(answer.response_id):
            await self.metering.settle_hit(answer.response_id, held)

    def _closed(self, request: ChatRequest, abandoned: str | None) -> None:
        self.pending.close(request.response_id)
        if self.metering is not None:
            self.metering.release(request.response_id, abandoned=True)  # no-op once settled by the Answer
        if abandoned is not None:
            self.abandon(request, abandoned)

    def abandon(self, request: ChatRequest, reason: str, generation: int = 0) -> None:
        """Publish Cancel for an abandoned request. A stream whose client went away may be resumed
        (gateway.resume): its Cancel waits for the resume grace and is dropped if a connection took it over."""
        cancel = partial(self._cancel, request, reason)
        streams = self.streams if reason == "client_disconnected" and request.stream else None
        work = cancel() if streams is None else streams.unless_resumed(request.response_id, generation, cancel)
        # Detached from the connection's task: that task is being cancelled when the client went away.
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel(self, request: ChatRequest, reason: str) -> None:
        with bind_response_id(request.response_id):
            try:
                await self.bus.publish(Cancel(**request.child_fields(), reason=reason), self.bus.topics.cancel)
                GATEWAY_CANCELLED.labels(reason).inc()  # published (a resumed stream's never is)
                log.info("request abandoned (%s); published Cancel", reason)
            except Exception:
                log.exception("could not publish Cancel")

    async def aclose(self) -> None:
        """Let pending Cancel messages go out before the broker stops."""
        if self._background:
            grace = self.streams.grace_s if self.streams is not None else 0.0
            await asyncio.wait(set(self._background), timeout=5 + grace)


def housekeeping_audit(request: ChatRequest, kind: str) -> AuditEvent:
    """The record of a request sent past the pipeline: its kind; its Answer (model, usage, error) follows."""
    return AuditEvent(**request.child_fields(), actor="gateway", action="housekeeping", subject=kind,
                      reason="client housekeeping request: one small-model call, no plan, no experts, "
                             "no graph ingest, no cache write", details={"kind": kind})


async def client_gone(request: Request) -> None:
    """Completes when the client disconnects (the body must have been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def final_answer(run: RequestRun, http: Request, api: str) -> Answer | None:
    """A non-streaming request's Answer (None: the client went away first, answer 499). Closes the run,
    counts the request, and raises the answer's error when it has nothing else to show."""
    started = time.perf_counter()
    mode = run.request.mode
    try:
        answer = await run.answer(client_gone(http))
    except ClientGone:
        GATEWAY_REQUESTS.labels(api, mode, "499").inc()
        return None
    finally:
        run.close()
    GATEWAY_LATENCY.labels(api, "false").observe(time.perf_counter() - started)
    error = answer_error(answer)
    if error is not None and not answer.content and not answer.tool_calls:
        raise error
    GATEWAY_REQUESTS.labels(api, mode, "200").inc()
    return answer
