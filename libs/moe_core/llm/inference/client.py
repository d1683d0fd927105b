"""The inference client: failover across candidate servers, retries with backoff, streaming."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.contracts import ModelOutput, Usage
from moe_core.llm.inference import protocols
from moe_core.llm.inference import tools as tool_wire
from moe_core.llm.inference.config import InferenceConfig, InferenceServer, ModelRef
from moe_core.llm.inference.fleet import InferenceFleet, Slot, order_servers
from moe_core.llm.inference.live import FleetOverrides, LiveOverrides
from moe_core.llm.token_budget import BudgetExhausted, TokenBudgets, prompt_bound
from moe_core.runtime import replay
from moe_core.runtime.inference_errors import InferenceError, http_kind
from moe_core.runtime.observability import current_response_id
from moe_core.runtime.observability.ledger import model_call
from moe_core.runtime.observability.metrics import INFERENCE_FAILOVERS, INFERENCE_SECONDS, INFERENCE_TOKENS
from moe_core.runtime.settings import FleetSettings

FLEET_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
# what a model call's connection can fail with: httpx's own, and aiohttp's where httpx_aiohttp leaves one unmapped
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, aiohttp.ClientError, TimeoutError)
MAX_CONNECTIONS = 200
# An idle connection is not used again after this long: below the 5 s after which uvicorn (vLLM's server) and
# cpp-httplib (llama.cpp's) close an idle kept-alive connection, so the client never sends on one the server is
# closing at that moment (what is left of that race is retried: InferenceError.dropped).
KEEPALIVE_S = 4.0

log = logging.getLogger(__name__)


@dataclass
class Completion:
    content: str
    finish_reason: str
    usage: Usage
    model: str
    server: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StreamDelta:
    """A piece of a streamed answer; the last one has `done` set, with usage when the server sent it."""

    content: str = ""
    done: bool = False
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str = ""
    server: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # on the last delta: the assembled calls


@dataclass
class Held:
    """What one model call holds of its request's token budget (moe_core.llm.token_budget)."""

    response_id: str
    tokens: int
    max_tokens: int


class InferenceClient:
    """fleet: optional shared state (Redis) that orders servers by health, affinity, loaded models and load.
    budgets: the requests' token budgets (Redis); every call of a request that has one holds its bound first."""

    def __init__(self, config: InferenceConfig, http: httpx.AsyncClient | None = None,
                 fleet: InferenceFleet | None = None, budgets: TokenBudgets | None = None,
                 live: LiveOverrides | None = None) -> None:
        self.config = config
        self.base = config  # the environment's; `live`: the console's overlay on it (moe_core.llm.inference.live)
        self.live = live
        self.fleet = fleet
        self.budgets = budgets
        self._http = http or default_http()

    @classmethod
    def from_settings(cls, settings: FleetSettings, redis: Redis | None = None,
                      budgets: bool = True) -> InferenceClient:
        """With a Redis client the fleet state is used (and `run_heartbeat` may be started), and (budgets) the
        calls of a request that has a token budget hold their bound from it."""
        fleet = held = None
        if redis is not None:
            fleet = InferenceFleet(redis, settings.topic_namespace, unhealthy_s=settings.inference_unhealthy_s,
                                   affinity_ttl_s=settings.inference_affinity_ttl_s,
                                   heartbeat_s=settings.inference_heartbeat_s)
            held = TokenBudgets(redis, settings.topic_namespace) if budgets else None
        live = LiveOverrides(redis, settings.topic_namespace) if redis is not None else None
        return cls(InferenceConfig.from_settings(settings), fleet=fleet, budgets=held, live=live)

    async def refresh(self) -> int | None:
        """The console's overlay, if it changed, laid over the environment's configuration (a stage calls this
        before each message); the overlay's version in force (None: no overlay reader)."""
        if self.live is None:
            return None
        return self._lay(await self.live.changed(), self.live)

    def refreshed(self, raw: Any) -> int | None:
        """As refresh, from the overlay's key (`live.key`) as the caller read it in a round trip of its own."""
        if self.live is None:
            return None
        return self._lay(self.live.seen(raw), self.live)

    def _lay(self, found: FleetOverrides | None, live: LiveOverrides) -> int:
        if found is not None:
            try:
                self.config = self.base.with_overrides(found)
            except ValueError as exc:  # (the control plane validates; a hand-written key may not be)
                log.error("fleet configuration version %d not applied: %s", found.version, exc)
            else:
                log.info("fleet configuration version %d in force (by %s)", found.version, found.changed_by)
        return live.current.version

    async def run_heartbeat(self) -> None:
        """Poll every configured server for health and loaded models (runs until cancelled)."""
        if self.fleet is not None:
            await self.fleet.run_heartbeat(lambda: self.config.servers, self._http)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(
        self,
        refs: list[ModelRef],
        messages: list[dict[str, Any]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        schema_name: str = "output",
        timeout_s: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        user: str | None = None,
        unload: bool = False,
        strict: bool | None = None,
    ) -> Completion:
        """One completion from the first candidate that answers; retryable failures fail over.

        tools / tool_choice: OpenAI tool definitions passed to the model; its calls come back in
        Completion.tool_calls (OpenAI form, also for Ollama servers).
        user: the end user, for sticky server affinity of floating models.
        unload: an expert's call: a server configured to (`unload_after_expert`, Ollama) unloads the model once
        it has answered."""
        call = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "json_schema": json_schema,
            "schema_name": schema_name,
            "strict": strict,
            "tools": tools or None,
            "tool_choice": tool_choice if tools else None,
            "unload": unload,
        }
        recorded = replay.answer(call)  # a replay as recorded: the record answers, no model is called
        if recorded is not None:
            if (error := replay.failed(recorded)) is not None:  # it failed then: it fails the same way now
                raise error
            return Completion(recorded.content, recorded.finish_reason, _usage(recorded), recorded.model,
                              recorded.server, list(recorded.tool_calls))
        held = await self._hold(messages, (tools or []) + ([json_schema] if json_schema else []), max_tokens)
        if held is not None:
            call["max_tokens"] = held.max_tokens
        used = 0
        try:
            try:
                completion = await self._chat(refs, call, timeout_s, user)
            except InferenceError as exc:
                replay.record_failure(call, exc)  # on the record: a replay as recorded fails it the same way
                raise
            used = completion.usage.total_tokens
            replay.record(call, completion.content, completion.finish_reason, completion.model, completion.server,
                          completion.tool_calls, completion.usage.prompt_tokens, completion.usage.completion_tokens)
            return completion
        finally:
            await self._release(held, used)

    async def _chat(self, refs: list[ModelRef], call: dict[str, Any], timeout_s: float | None,
                    user: str | None) -> Completion:
        errors: list[InferenceError] = []
        for ref, server in await self._ordered_targets(refs, user):
            for attempt in range(server.max_retries + 1):
                try:
                    async with self._running(server) as slot:
                        completion = await self._once(server, ref.model, call, timeout_s)
                        await self._succeeded(server, ref.model, user, slot)
                    return completion
                except InferenceError as exc:
                    if not await self._again(server, exc, errors, refs, attempt):
                        break
        raise _combine(errors, refs)

    async def _again(self, server: InferenceServer, exc: InferenceError, errors: list[InferenceError],
                     refs: list[ModelRef], attempt: int) -> bool:
        """After a failed attempt: raises when no other attempt can help; True to try the same server again (after
        a backoff), False to move on to the next."""
        await self._failed(server, exc)
        errors.append(exc)
        log.warning("inference attempt %d failed: %s", attempt + 1, exc)
        if not exc.retryable:
            raise _combine(errors, refs) from exc
        if not exc.retry_same_server or attempt >= server.max_retries:
            return False
        await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        return True

    async def stream(
        self,
        refs: list[ModelRef],
        messages: list[dict[str, Any]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        user: str | None = None,
        unload: bool = False,
        json_schema: dict[str, Any] | None = None,
        schema_name: str = "output",
        strict: bool | None = None,
    ) -> AsyncIterator[StreamDelta]:
        """Stream from the first candidate that accepts the request (failover before the first token).

        With tools, the model's tool calls are assembled and delivered on the last (done) delta. unload: as `chat`'s
        (an expert's streamed call). json_schema / schema_name / strict: as `chat`'s (a structured answer)."""
        call = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                "tools": tools or None, "tool_choice": tool_choice if tools else None, "unload": unload}
        if json_schema is not None:  # (only then: an unconstrained call's record digest stays as it was)
            call.update(json_schema=json_schema, schema_name=schema_name, strict=strict)
        recorded = replay.answer(call)  # a replay as recorded: the record answers, no model is called
        if recorded is not None:
            if recorded.content:
                yield StreamDelta(content=recorded.content, model=recorded.model, server=recorded.server)
            if (error := replay.failed(recorded)) is not None:  # it failed then, after what it had streamed
                raise error
            yield StreamDelta(done=True, finish_reason=recorded.finish_reason, usage=_usage(recorded),
                              model=recorded.model, server=recorded.server, tool_calls=list(recorded.tool_calls))
            return
        held = await self._hold(messages, (tools or []) + ([json_schema] if json_schema else []), max_tokens)
        if held is not None:
            call["max_tokens"] = held.max_tokens
        used = held.tokens if held else 0  # a stream left before its end keeps all it held
        text: list[str] = []
        try:
            async for delta in self._stream(refs, call, timeout_s, user):
                if delta.done:  # without usage from the server, the call keeps all it held
                    used = delta.usage.total_tokens if delta.usage else (held.tokens if held else 0)
                    usage = delta.usage or Usage()
                    replay.record(call, "".join(text), delta.finish_reason or "stop", delta.model, delta.server,
                                  delta.tool_calls, usage.prompt_tokens, usage.completion_tokens)
                else:
                    text.append(delta.content)
                yield delta
        except InferenceError as exc:  # on the record with what it had streamed: a replay fails it the same way
            replay.record_failure(call, exc, "".join(text))
            raise
        finally:
            await self._release(held, used)

    async def _stream(self, refs: list[ModelRef], call: dict[str, Any], timeout_s: float | None,
                      user: str | None) -> AsyncIterator[StreamDelta]:
        errors: list[InferenceError] = []
        for ref, server in await self._ordered_targets(refs, user):
            for attempt in range(server.max_retries + 1):  # as `_chat`'s, until the first piece
                started = False
                try:
                    async with self._running(server) as slot:
                        async for delta in self._stream_once(server, ref.model, call, timeout_s):
                            started = True
                            yield delta
                        await self._succeeded(server, ref.model, user, slot)
                    return
                except InferenceError as exc:
                    if started:
                        await self._failed(server, exc)
                        raise
                    if not await self._again(server, exc, errors, refs, attempt):
                        break
        raise _combine(errors, refs)

    async def _hold(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                    max_tokens: int | None) -> Held | None:
        """Hold this call's bound (prompt + max_tokens) of the current request's token budget, if it has one."""
        response_id = current_response_id()
        if self.budgets is None or response_id == "-":
            return None
        prompt = prompt_bound(messages, tools)
        try:
            granted = await self.budgets.take(response_id, prompt, max_tokens)
        except BudgetExhausted as exc:
            raise InferenceError("budget", str(exc)) from exc
        except FLEET_ERRORS as exc:  # never spend what cannot be counted
            raise InferenceError("budget", f"the request's token budget cannot be checked: {exc}") from exc
        return None if granted is None else Held(response_id, prompt + granted, granted)

    async def _release(self, held: Held | None, used: int) -> None:
        if held is not None and self.budgets is not None:
            try:
                await self.budgets.give_back(held.response_id, held.tokens - used)
            except FLEET_ERRORS as exc:  # what it held stays spent: never more than the budget
                log.warning("token budget of %s not given back: %s", held.response_id, exc)

    def _targets(self, refs: list[ModelRef]) -> list[tuple[ModelRef, InferenceServer]]:
        """Every (model, server) that may answer, in configuration order: only those the request's egress decision
        allows (Envelope.egress); none of them is data_class_forbidden, and nothing is sent."""
        targets = [(ref, server) for ref in refs for server in self.config.candidates(ref)]
        if not targets:
            raise InferenceError("no_server", f"no configured server serves {', '.join(map(str, refs))}")
        allowed = replay.allowed_egress()
        if allowed is None:
            return targets
        permitted = [(ref, server) for ref, server in targets if f"{server.name}/{ref.model}" in allowed]
        if not permitted:
            raise InferenceError("data_class_forbidden", "the request's data class may not reach any server of "
                                 f"{', '.join(map(str, refs))} (its egress decision)")
        return permitted

    async def _ordered_targets(self, refs: list[ModelRef], user: str | None) -> list[tuple[ModelRef, InferenceServer]]:
        """Configuration order, or with a fleet: floating models ordered by the fleet's view, known-unhealthy
        servers moved last (still tried when nothing else answers)."""
        targets = self._targets(refs)
        if self.fleet is None or len({server.name for _, server in targets}) < 2:
            return targets  # one server: nothing to order, no round trip
        try:
            servers = list({server.name: server for _, server in targets}.values())
            views = await self.fleet.views(servers)
            ordered: list[tuple[ModelRef, InferenceServer]] = []
            allowed = {(ref.model, server.name) for ref, server in targets}
            for ref in refs:
                candidates = [s for s in self.config.candidates(ref) if (ref.model, s.name) in allowed]
                if ref.server is None and len(candidates) > 1:
                    candidates = order_servers(ref.model, candidates, views,
                                               await self.fleet.affinity(user, ref.model))
                ordered += [(ref, server) for server in candidates]
        except FLEET_ERRORS as exc:
            log.warning("fleet state unavailable, using configuration order: %s", exc)
            return targets
        return sorted(ordered, key=lambda target: not views[target[1].name].healthy)

    def _bookkeeping(self) -> bool:
        """Load, health and affinity in Redis matter only when there is a choice of servers."""
        return self.fleet is not None and len(self.config.servers) > 1

    def _running(self, server: InferenceServer) -> contextlib.AbstractAsyncContextManager[Slot | None]:
        if self.fleet is not None and self._bookkeeping():
            return self.fleet.running(server.name)
        return contextlib.nullcontext()

    async def _succeeded(self, server: InferenceServer, model: str, user: str | None, slot: Slot | None) -> None:
        if self.fleet is not None and self._bookkeeping():
            with contextlib.suppress(*FLEET_ERRORS):
                await self.fleet.succeeded(server.name, model, user, slot)

    async def _failed(self, server: InferenceServer, exc: InferenceError) -> None:
        if exc.retryable:
            INFERENCE_FAILOVERS.labels(server.name, exc.kind).inc()
            if self.fleet is not None:
                with contextlib.suppress(*FLEET_ERRORS):
                    await self.fleet.failed(server.name, f"{exc.kind}: {exc.detail}")

    def _timeout(self, server: InferenceServer, timeout_s: float | None) -> httpx.Timeout:
        total = min(server.timeout_s, timeout_s) if timeout_s else server.timeout_s
        if total <= 0:
            raise InferenceError("timeout", "no time left before the deadline", server=server.name)
        return httpx.Timeout(total, connect=min(server.connect_timeout_s, total))

    def _request(self, server: InferenceServer, model: str, call: dict[str, Any], stream: bool) -> tuple[str, dict]:
        if server.api == "ollama":
            keep_alive = 0 if call.get("unload") and server.unload_after_expert else None
            return f"{server.url}/api/chat", protocols.ollama_body({**call, "keep_alive": keep_alive}, model, stream)
        return f"{server.url}/v1/chat/completions", protocols.openai_body(call, model, stream)

    def _headers(self, server: InferenceServer) -> dict[str, str]:
        return {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}

    async def _once(
        self, server: InferenceServer, model: str, call: dict[str, Any], timeout_s: float | None
    ) -> Completion:
        """One call; a connection the server dropped without answering is tried once more on a new one."""
        try:
            return await self._post(server, model, call, timeout_s)
        except InferenceError as exc:
            if not exc.dropped:
                raise
            log.info("%s dropped the connection without answering (%s); trying once more", server.name, exc.detail)
            return await self._post(server, model, call, timeout_s)

    async def _post(
        self, server: InferenceServer, model: str, call: dict[str, Any], timeout_s: float | None
    ) -> Completion:
        url, body = self._request(server, model, call, stream=False)
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._http.post(
                url, json=body, headers=self._headers(server), timeout=self._timeout(server, timeout_s)
            )
            _raise_for_status(response, server.name, model)
            parse = protocols.parse_ollama if server.api == "ollama" else protocols.parse_openai
            try:
                data = response.json()
            except json.JSONDecodeError as exc:
                raise InferenceError("bad_response", "response is not JSON", server=server.name, model=model) from exc
            content, finish, prompt, completion = parse(data, server.name, model)
            tool_calls = tool_wire.tool_calls_of(data, server.api)
            outcome = "ok"
        except TRANSPORT_ERRORS as exc:
            raise transport_failure(exc, server.name, model) from exc
        finally:
            INFERENCE_SECONDS.labels(server.name, model, outcome).observe(time.perf_counter() - started)
            model_call(started)  # the run's model time (moe_core.runtime.observability.ledger)
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
        _count(server.name, model, usage)
        return Completion(content, finish, usage, model, server.name, tool_calls)

    async def _stream_once(
        self, server: InferenceServer, model: str, call: dict[str, Any], timeout_s: float | None
    ) -> AsyncIterator[StreamDelta]:
        """One streamed call; a connection the server dropped before the first piece is tried once more on a new
        one (nothing has reached the caller yet)."""
        started = False
        try:
            async for delta in self._stream_post(server, model, call, timeout_s):
                started = True
                yield delta
        except InferenceError as exc:
            if started or not exc.dropped:
                raise
            log.info("%s dropped the connection without answering (%s); trying once more", server.name, exc.detail)
            async for delta in self._stream_post(server, model, call, timeout_s):
                yield delta

    async def _stream_post(
        self, server: InferenceServer, model: str, call: dict[str, Any], timeout_s: float | None
    ) -> AsyncIterator[StreamDelta]:
        url, body = self._request(server, model, call, stream=True)
        ollama = server.api == "ollama"
        finish: str | None = None
        usage: Usage | None = None
        calls = tool_wire.ToolCallAssembler()
        started = time.perf_counter()
        outcome = "error"
        try:
            async with self._http.stream(
                "POST", url, json=body, headers=self._headers(server), timeout=self._timeout(server, timeout_s)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_status(response, server.name, model)
                async for line in response.aiter_lines():
                    chunk = _stream_chunk(line, ollama)  # parsed once, read for the text and the tool calls
                    if chunk is None:
                        continue
                    calls.feed(chunk, ollama)
                    piece, finish_now, usage_now = _read_chunk(chunk, ollama)
                    finish = finish_now or finish
                    usage = usage_now or usage
                    if piece:
                        yield StreamDelta(content=piece, model=model, server=server.name)
            outcome = "ok"
        except TRANSPORT_ERRORS as exc:
            raise transport_failure(exc, server.name, model) from exc
        finally:  # the whole stream, the caller's work between the pieces included
            INFERENCE_SECONDS.labels(server.name, model, outcome).observe(time.perf_counter() - started)
            model_call(started)  # the run's model time (moe_core.runtime.observability.ledger)
        if usage:
            _count(server.name, model, usage)
        yield StreamDelta(done=True, finish_reason=finish or "stop", usage=usage, model=model, server=server.name,
                          tool_calls=calls.result())


def default_http() -> httpx.AsyncClient:
    """httpx's API over aiohttp's connections (httpx_aiohttp, by httpx's maintainer; what the openai SDK offers as
    DefaultAioHttpClient). With httpx's own connection layer (httpcore, h11) a model call cost the calling service
    1.5-2.4 ms of CPU for a completion and 2.4-3.3 ms for a streamed one of 40 pieces; over aiohttp 1.3-1.6 and
    1.7 (`python -m bench.http_costs`). Timeouts mean what they meant: connect, and each read."""
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=KEEPALIVE_S)
    return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), limits=limits)


def transport_failure(exc: BaseException, server: str, model: str) -> InferenceError:
    """A call's connection failed: `timeout` when it timed out, else `connect` (refused, reset, dropped midway).
    httpx_aiohttp maps every aiohttp connection error to an httpx timeout; the aiohttp error it keeps as the
    cause says which it was."""
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    timed_out = isinstance(cause, (httpx.TimeoutException, TimeoutError))  # aiohttp's timeouts are TimeoutErrors
    kind, default = ("timeout", "timed out") if timed_out else ("connect", type(cause).__name__)
    dropped = isinstance(cause, (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError))
    return InferenceError(kind, str(exc) or default, server=server, model=model, dropped=dropped)


def _stream_chunk(line: str, ollama: bool) -> dict[str, Any] | None:
    """One line of a streamed reply as its chunk; None for blanks, SSE comments and [DONE]. A line that is not
    JSON raises (the server is broken, not quiet)."""
    if ollama:
        return json.loads(line) if line.strip() else None
    return protocols.openai_stream_line(line)


def _read_chunk(chunk: dict[str, Any], ollama: bool) -> tuple[str, str | None, Usage | None]:
    if ollama:
        piece = (chunk.get("message") or {}).get("content") or ""
        if chunk.get("done"):
            done = Usage(prompt_tokens=chunk.get("prompt_eval_count", 0),
                         completion_tokens=chunk.get("eval_count", 0))
            return piece, chunk.get("done_reason") or "stop", done
        return piece, None, None
    usage: Usage | None = None
    if chunk.get("usage"):
        u = chunk["usage"]
        usage = Usage(prompt_tokens=u.get("prompt_tokens", 0), completion_tokens=u.get("completion_tokens", 0))
    choices = chunk.get("choices") or []
    if not choices:
        return "", None, usage
    return (choices[0].get("delta") or {}).get("content") or "", choices[0].get("finish_reason"), usage


def _raise_for_status(response: httpx.Response, server: str, model: str) -> None:
    if response.status_code >= 400:
        text = response.text[:300]
        status = response.status_code
        raise InferenceError(http_kind(status, text), f"HTTP {status}: {text}", server=server, model=model,
                             status=status)


def _usage(recorded: ModelOutput) -> Usage:
    return Usage(prompt_tokens=recorded.prompt_tokens, completion_tokens=recorded.completion_tokens)


def _count(server: str, model: str, usage: Usage) -> None:
    INFERENCE_TOKENS.labels(server, model, "prompt").inc(usage.prompt_tokens)
    INFERENCE_TOKENS.labels(server, model, "completion").inc(usage.completion_tokens)


def _combine(errors: list[InferenceError], refs: list[ModelRef]) -> InferenceError:
    if not errors:
        return InferenceError("no_server", f"no server for {', '.join(map(str, refs))}")
    last = errors[-1]
    summary = "; ".join(f"{e.server}/{e.model}: {e.detail}" for e in errors[-3:])
    return InferenceError(last.kind, f"all {len(errors)} attempts failed: {summary}", server=last.server,
                          model=last.model, status=last.status)
