"""The limits hook of the chat flow: reserve before a request enters the fleet, settle on its Answer.

`reserve` runs in ChatService.start for every API (chat completions, messages, responses). It reserves the
request's token cap: MOE_LIMIT_REQUEST_TOKENS (or the request's own estimate, `(prompt estimate + max tokens)
x MOE_LIMIT_RESERVE_MULTIPLIER`, if larger), or as much as the key's and tenant's limits have room for — never
less than the estimate (else 429) — and its cost at the model's dearer price per token. The cap is opened as
the request's token budget (moe_core.llm.token_budget): every model call of the request holds its bound from it
before it runs, so the request's usage cannot exceed what was reserved; the reservation, the budget and the hold are
one script (moe_core.access.edge_hit), one round trip. `settle_recording` runs in the answers subscriber
(gateway.feedback): before the client sees the answer, the settlement's claim decides its usage (the answer's record
for feedback written in the claim's round trip) and the usage replaces the reservation in the counters (the client's
next request finds the room) in the same round trip: the claim is given the hold this replica reserved
(Settlements.claim's `reserved`; `Settlements.apply` separately only when the claim found another hold or usage,
e.g. a resumed stream's): one Redis round trip on the answer's path, not two. Its usage event (acknowledged by the
broker) and the hold's finish follow the reply, off the answer's path (issue 52: no Kafka acknowledgement in a
request's wait). A charge that fails, or a replica that dies meanwhile, leaves the claimed hold due: the control
plane's sweeper publishes the same usage after the lease, once, as for an exact repeat. An Answer of a request whose
budget ran out ends with finish_reason "length" and says so. A request abandoned before its Answer (client gone,
deadline) is charged what its model calls used or still hold, and its budget is closed (no further call runs).

Settling does not depend on the replica that reserved: what it needs is kept in Redis with the budget
(moe_core.access.settlement, same round trip) and claimed by exactly one settler fleet-wide
(moe_core.access.settler) — this replica on the Answer, a replica that resumed the stream (gateway.resume), or,
when the owner died and nobody resumed, the control plane's sweeper (control_plane.usage.settle_sweep). Each request
is charged once: in the counters, in its settler's Prometheus usage counters, and as one UsageCharged event on
the `usage` topic, which the control plane writes as one row of `usage_requests` (control_plane.usage.recorder;
a repeated event changes nothing). The edge writes no usage to Postgres.

An exact repeat of a cached question (gateway.chat) is reserved and read in one round trip
(moe_core.access.edge_hit): a hit is counted as one request with no tokens, its hold written decided and
claimed, its record for feedback written; its usage event (`hit_usage`) is published with its Answer before the
reply, and `settle_hit` finishes the hold after it. The same script first checks that the client profiles the
request was shaped with are the ones in force (gateway.client_profiles.LiveProfiles): one Redis round trip before
a hit's reply or a miss's publish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.settings import GatewaySettings
from moe_core.access.edge_hit import EdgeHits, Hit, RecordHead, Stale
from moe_core.access.keystore import ApiKey
from moe_core.access.limits import Limiter, LimitExceeded, ModelPrice, Reservation
from moe_core.access.settlement import Claim, Hold, Write
from moe_core.access.settler import PublishUsage, Settler, usage_event
from moe_core.contracts import Answer, ChatRequest, UsageCharged
from moe_core.llm.token_budget import IMAGE_TOKENS, prompt_bound
from moe_core.runtime.observability.metrics import GATEWAY_EXACT_CACHE, GATEWAY_LIMITED
from moe_core.runtime.openai_error import OpenAIError

if TYPE_CHECKING:
    from gateway.stream_registry import StreamRegistry

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4
BUDGET_TTL_MARGIN_S = 120  # the budget outlives the request's deadline (late stages find it spent, not absent)
HOLD_TTL_S = 86_400  # what settling needs outlives the budget: a fleet without a replica for a while settles later
OUT_OF_BUDGET = "(Incomplete: this request's token budget of {tokens} tokens ran out before it could finish.)"


def estimate(request: ChatRequest, default_completion: int, multiplier: float = 1.0) -> tuple[int, int]:
    """(prompt, completion) tokens reserved for a request: its text at 4 characters a token (rounded up) and
    IMAGE_TOKENS per image, and its max_tokens (or the default), both times the multiplier."""
    chars = sum(len(m.content) + len(json.dumps(m.tool_calls or [])) for m in request.messages)
    chars += len(json.dumps(request.tools)) if request.tools else 0
    prompt = math.ceil(chars / CHARS_PER_TOKEN)
    prompt += IMAGE_TOKENS * sum(len(m.images) for m in request.messages)  # the vision call's bound for each image
    completion = request.params.max_tokens or default_completion
    return math.ceil(prompt * multiplier), math.ceil(completion * multiplier)


class Metering(Settler):
    def __init__(self, settings: GatewaySettings, limiter: Limiter, publish_usage: PublishUsage) -> None:
        """publish_usage: hands a settled request's charge on and returns once it is durable (the edge: published
        to the `usage` topic with the broker's acknowledgement, gateway.accounts)."""
        super().__init__(limiter.redis, settings.topic_namespace, publish_usage)  # claim and charge, once
        self.settings = settings
        self.limiter = limiter
        self.hits = EdgeHits(limiter, self.settlements)  # an exact repeat: limits and its answer, one round trip
        self.streams: StreamRegistry | None = None  # resumable streams: a dropped stream's settling waits
        # requests this replica reserved and has not settled -> (a stream's deadline (epoch s; 0: not a stream),
        # the hold it opened: its claim on the Answer applies the usage in the same round trip)
        self._mine: dict[str, tuple[float, Hold]] = {}
        self._background: set[asyncio.Task[None]] = set()

    def cap(self, request: ChatRequest) -> int:
        """The tokens a request's model calls may need: MOE_LIMIT_REQUEST_TOKENS, plus room for
        MOE_LIMIT_PROMPT_CALLS calls that each carry its whole prompt (at the calls' own bound, in bytes)."""
        prompt = prompt_bound([m.model_dump(exclude_none=True) for m in request.messages], request.tools or None)
        return self.settings.limit_request_tokens + self.settings.limit_prompt_calls * prompt

    def price(self, model: str, mode: str) -> ModelPrice | None:
        prices = self.settings.model_prices
        return prices.get(model) or prices.get(mode)

    def due(self, request: ChatRequest) -> float:
        """When the request's owner must have settled it (else the control plane's sweeper does)."""
        s = self.settings
        return request.deadline_at.timestamp() + s.deadline_grace_s + s.resume_grace_s + s.settle_orphan_after_s

    async def reserve(self, key: ApiKey | None, request: ChatRequest, model: str,
                      exact_key: str | None = None, *, record: RecordHead | None = None,
                      overlay: tuple[str, str] | None = None) -> Hit | Stale | None:
        """Reserve the request's token cap against its key's and tenant's limits and open it as the request's
        token budget, with what settling it needs (moe_core.access.settlement), or raise 429 (LimitExceeded) / 503
        (limits unavailable). exact_key: where an exact repeat's cached answer would be (moe_core.llm.exact_cache),
        read in the same round trip (moe_core.access.edge_hit): a hit is counted (one request, no tokens), its
        `record` for feedback written, and returned with its hold, decided; `settle_hit` settles it after the reply
        (or `withdraw_hit` gives it back). overlay: (key, SHA-1) of the live overlay the request was shaped with,
        checked first in the same script: `Stale` (nothing counted) when another one is in force. A script whose
        reply does not come (a timeout, a cut connection) is sent once more on a fresh connection: a pooled one can
        die without a reset, and before the script checked the profiles, a GET of them whose errors were passed
        over paid for it. The script returns its own earlier run's outcome again (by the request's hold), so a run
        whose reply was lost is counted once."""
        if key is None:  # not an authenticated client request (internal use)
            return None
        prompt, completion = estimate(request, self.settings.limit_completion_tokens,
                                      self.settings.limit_reserve_multiplier)
        least = prompt + completion
        price = self.price(model, request.mode)
        tenant = request.tenant_id
        counters = self.limiter.counters([("key", key.id, key.limits), ("tenant", tenant, key.limits_of(tenant))],
                                         priced=price is not None)
        ttl = math.ceil(request.remaining_seconds()) + BUDGET_TTL_MARGIN_S
        want, rate = max(self.cap(request), least), price.micros_per_token if price else 0.0
        fields = {"key_id": key.id, "tenant_id": tenant, "mode": request.mode, "model": model, "price": price,
                  "prompt": prompt, "completion": completion, "created": request.created_at.timestamp(),
                  "deadline": request.deadline_at.timestamp()}
        script = partial(self.hits.reserve, counters, want, least, rate, exact_key=exact_key,
                         response_id=request.response_id, hold=Hold.of(Reservation(counters, 0, 0), **fields),
                         budget_ttl_s=ttl, hold_ttl_s=ttl + HOLD_TTL_S, due=self.due(request), record=record,
                         overlay=overlay)
        try:  # reserved and opened as its token budget with its hold in one script (or a hit, answered)
            try:
                found = await script()
            except (RedisTimeoutError, RedisConnectionError) as exc:  # e.g. a pooled connection dead without a
                # reset: once more on a fresh one (the script knows its own earlier run: nothing counted twice)
                log.warning("limits script of %s failed (%s): once more on a fresh connection", request.response_id,
                            exc)
                with suppress(RedisError, OSError):  # the idle ones may be as dead: they reconnect when next used
                    await self.limiter.redis.connection_pool.disconnect(inuse_connections=False)
                found = await script()
            if isinstance(found, Hit | Stale):
                return found
            held = Hold.of(found, **fields)  # as the script wrote it (the grant and its cost)
        except LimitExceeded as exc:
            GATEWAY_LIMITED.labels(exc.scope, exc.limit).inc()
            raise
        except (RedisError, OSError) as exc:  # limits cannot be checked: never let a budget be overrun
            log.error("limits unavailable: %s", exc)
            raise OpenAIError(503, "Limits and budgets cannot be checked right now; try again shortly.",
                              "server_error", code="limits_unavailable") from exc
        self._mine[request.response_id] = (request.deadline_at.timestamp() if request.stream else 0.0, held)
        return None

    def hit_usage(self, response_id: str, hold: Hold) -> UsageCharged:
        """An exact repeat's usage event (answered, no tokens): published with its Answer and egress record, in
        their one wait for the broker before the reply (gateway.chat), instead of a Produce request of its own."""
        return usage_event(response_id, _answered(hold), "owner")

    async def settle_hit(self, response_id: str, hold: Hold) -> bool:
        """After the reply: an exact repeat's hold finished, once (moe_core.access.settler); its usage event went
        out with its Answer (hit_usage). On failure the hold stays, decided, for the control plane's sweeper once
        its lease runs out (it publishes the same usage again: one row per response id): logged, and counted as
        moe_gateway_exact_cache_total{outcome="settle_deferred"}."""
        charged = await self._charge(response_id, _answered(hold), "owner", published=True)
        if not charged:
            GATEWAY_EXACT_CACHE.labels("settle_deferred").inc()
        return charged

    async def withdraw_hit(self, response_id: str, hold: Hold, record: str | None = None) -> None:
        """A hit that is not answered after all (its entry unreadable, its record refused): its request is given
        back, no charge, and its record for feedback (the key `record`, written by the script that found it)
        deleted: nobody rates an answer that was not given."""
        if record is not None:
            try:
                await self.limiter.redis.delete(record)
            except (RedisError, OSError) as exc:  # it names the entry the request would have had; expires
                log.warning("record of withdrawn hit %s not deleted: %s", response_id, exc)
        await self._charge(response_id, Claim("mine", hold, 0, 0, "withdrawn", False), "owner")

    def release_hit(self, response_id: str, hold: Hold, record: str | None = None) -> None:
        """`withdraw_hit` detached from the request's task (which is failing or being cancelled)."""
        self._detach(self.withdraw_hit(response_id, hold, record))

    async def settle(self, answer: Answer, *, adopted: bool = False) -> Answer:
        """Charge the Answer's usage; the Answer as the client gets it (marked when its budget ran out).
        adopted: this replica serves a stream another one accepted (gateway.resume)."""
        return (await self.settle_recording(answer, None, adopted=adopted))[0]

    async def settle_recording(self, answer: Answer, record: Write | None, *,
                               adopted: bool = False) -> tuple[Answer, bool]:
        """`settle`, with the answer's record for feedback (gateway.feedback) written in the claim's round trip
        when this replica settles it; and whether the record was written (if not, it is the caller's)."""
        mine = self._mine.pop(answer.response_id, None)
        if not adopted and mine is None:
            return answer, False  # not metered here
        claim = await self._claim(answer.response_id, "answer", answer.usage.prompt_tokens,
                                  answer.usage.completion_tokens, "answered", record,
                                  reserved=mine[1] if mine is not None else None)  # applied in the claim's trip
        written = claim is not None and record is not None
        if claim is None or claim.hold is None:
            return answer, written
        if claim.state == "mine":  # the usage is decided and leased: the counters now, its event after the reply
            if not claim.applied:  # another hold or usage than this replica reserved (adopted, claimed before)
                await self._apply(answer.response_id, claim)
            self._detach(self._charge(answer.response_id, claim, "adopter" if adopted else "owner"))
        return (out_of_budget(answer, claim.hold.tokens) if claim.exhausted else answer), written

    def release(self, response_id: str, *, abandoned: bool, published: bool = True) -> None:
        """The request ended without a settled Answer: abandoned (charged what its model calls used or still
        hold) or never published (the reservation is given back). A stream whose client went away before its
        deadline may still be resumed: it is abandoned after MOE_RESUME_GRACE_S unless a connection took it
        over (that one settles it)."""
        mine = self._mine.pop(response_id, None)
        if mine is None:
            return
        stream = mine[0] > time.time()
        work: Awaitable[object]
        if not published:
            work = self.close(response_id, "withdraw", "owner")
        elif stream and self.streams is not None:
            work = self.streams.unless_resumed(response_id, 0, partial(self.close, response_id, "spent", "owner"))
        else:
            work = self.close(response_id, "spent", "owner")
        self._detach(work)

    def abandon_resumed(self, response_id: str, generation: int, *, client_gone: bool) -> None:
        """A resumed stream ended without its Answer: abandoned (when its client went away: unless yet another
        connection took it over within MOE_RESUME_GRACE_S)."""
        work = partial(self.close, response_id, "spent", "adopter")
        streams = self.streams if client_gone else None
        self._detach(streams.unless_resumed(response_id, generation, work) if streams is not None else work())

    def _detach(self, work: Awaitable[object]) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _quietly(self, work: Awaitable[object]) -> None:
        try:
            await work
        except Exception:
            log.exception("reservation not released")

    async def _apply(self, response_id: str, claim: Claim) -> None:
        """The claimed usage in the counters before the reply; on failure the finish applies it (or the sweeper's)."""
        try:
            await self.settlements.apply(response_id, claim)
        except (RedisError, OSError) as exc:
            log.warning("usage of %s not applied now: %s", response_id, exc)

    async def settled(self) -> None:
        """Wait for the charges and releases still running after their replies (tests, measurements)."""
        while self._background:
            await asyncio.wait(set(self._background))

    async def aclose(self) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)


def _answered(hold: Hold) -> Claim:
    """An exact repeat's claim: its hold, claimed in the script that found it, answered with no tokens."""
    return Claim("mine", hold, 0, 0, "answered", False)


def out_of_budget(answer: Answer, tokens: int) -> Answer:
    """An Answer whose request ran out of token budget: finish "length", and it says so plainly."""
    note = OUT_OF_BUDGET.format(tokens=tokens)
    if answer.tool_calls:
        return answer.model_copy(update={"finish_reason": "length"})
    content = f"{answer.content}\n\n{note}" if answer.content and answer.error is None else note
    return answer.model_copy(update={"finish_reason": "length", "content": content, "error": None})
