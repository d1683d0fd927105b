"""The limits hook of the chat flow: reserve before a request enters the fleet, settle on its Answer.

`reserve` runs in ChatService.start for every API (chat completions, messages, responses). It reserves the
request's token cap: MOE_LIMIT_REQUEST_TOKENS (or the request's own estimate, `(prompt estimate + max tokens)
x MOE_LIMIT_RESERVE_MULTIPLIER`, if larger), or as much as the key's and tenant's limits have room for — never
less than the estimate (else 429) — and its cost at the model's dearer price per token. The cap is opened as
the request's token budget (moe_core.token_budget): every model call of the request holds its bound from it
before it runs, so the request's usage cannot exceed what was reserved. `settling` wraps the answers
subscriber: the Answer's usage replaces the reservation and is recorded (usage table, Prometheus) before the
client sees the answer; an Answer of a request whose budget ran out ends with finish_reason "length" and says
so. A request abandoned before its Answer (client gone, deadline) is charged what its model calls used or
still hold, and its budget is closed (no further call runs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.keystore import ApiKey
from gateway.limits import Limiter, LimitExceeded, ModelPrice, Reservation
from gateway.openai_api import OpenAIError
from gateway.settings import GatewaySettings
from gateway.usage import UsageStore
from moe_core.contracts import Answer, ChatRequest
from moe_core.observability.metrics import GATEWAY_LIMITED
from moe_core.token_budget import IMAGE_TOKENS, TokenBudgets, prompt_bound

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4
BUDGET_TTL_MARGIN_S = 120  # the budget outlives the request's deadline (late stages find it spent, not absent)
OUT_OF_BUDGET = "(Incomplete: this request's token budget of {tokens} tokens ran out before it could finish.)"


@dataclass
class Held:
    reservation: Reservation
    key_id: str
    tenant_id: str
    mode: str
    model: str
    price: ModelPrice | None
    prompt: int
    completion: int


def estimate(request: ChatRequest, default_completion: int, multiplier: float = 1.0) -> tuple[int, int]:
    """(prompt, completion) tokens reserved for a request: its text at 4 characters a token (rounded up) and
    IMAGE_TOKENS per image, and its max_tokens (or the default), both times the multiplier."""
    chars = sum(len(m.content) + len(json.dumps(m.tool_calls or [])) for m in request.messages)
    chars += len(json.dumps(request.tools)) if request.tools else 0
    prompt = math.ceil(chars / CHARS_PER_TOKEN)
    prompt += IMAGE_TOKENS * sum(len(m.images) for m in request.messages)  # the vision call's bound for each image
    completion = request.params.max_tokens or default_completion
    return math.ceil(prompt * multiplier), math.ceil(completion * multiplier)


class Metering:
    def __init__(self, settings: GatewaySettings, limiter: Limiter, usage: Callable[[], UsageStore]) -> None:
        self.settings = settings
        self.limiter = limiter
        self.usage = usage
        self.budgets = TokenBudgets(limiter.redis, settings.topic_namespace)
        self._held: dict[str, Held] = {}
        self._background: set[asyncio.Task[None]] = set()

    def cap(self, request: ChatRequest) -> int:
        """The tokens a request's model calls may need: MOE_LIMIT_REQUEST_TOKENS, plus room for
        MOE_LIMIT_PROMPT_CALLS calls that each carry its whole prompt (at the calls' own bound, in bytes)."""
        prompt = prompt_bound([m.model_dump(exclude_none=True) for m in request.messages], request.tools or None)
        return self.settings.limit_request_tokens + self.settings.limit_prompt_calls * prompt

    def price(self, model: str, mode: str) -> ModelPrice | None:
        prices = self.settings.model_prices
        return prices.get(model) or prices.get(mode)

    async def reserve(self, key: ApiKey | None, request: ChatRequest, model: str) -> None:
        """Reserve the request's token cap against its key's and tenant's limits and open it as the request's
        token budget, or raise 429 (LimitExceeded) / 503 (limits unavailable)."""
        if key is None:  # not an authenticated client request (internal use)
            return
        prompt, completion = estimate(request, self.settings.limit_completion_tokens,
                                      self.settings.limit_reserve_multiplier)
        least = prompt + completion
        price = self.price(model, request.mode)
        tenant = request.tenant_id
        counters = self.limiter.counters([("key", key.id, key.limits), ("tenant", tenant, key.limits_of(tenant))],
                                         priced=price is not None)
        ttl = math.ceil(request.remaining_seconds()) + BUDGET_TTL_MARGIN_S
        try:
            reservation = await self.limiter.reserve(counters, max(self.cap(request), least), least,
                                                     price.micros_per_token if price else 0.0)
            try:
                await self.budgets.open(request.response_id, reservation.tokens, ttl)
            except (RedisError, OSError):  # without its budget the request must not run: give the cap back
                await self.limiter.settle(reservation, 0, 0, requests=0)
                raise
        except LimitExceeded as exc:
            GATEWAY_LIMITED.labels(exc.scope, exc.limit).inc()
            raise
        except (RedisError, OSError) as exc:  # limits cannot be checked: never let a budget be overrun
            log.error("limits unavailable: %s", exc)
            raise OpenAIError(503, "Limits and budgets cannot be checked right now; try again shortly.",
                              "server_error", code="limits_unavailable") from exc
        self._held[request.response_id] = Held(reservation, key.id, tenant, request.mode, model, price, prompt,
                                               completion)

    def settling(self, deliver: Callable[[Answer], Awaitable[None]]) -> Callable[[Answer], Awaitable[None]]:
        """Wrap the answers subscriber: settle an Answer this replica holds a reservation for, then deliver."""
        async def on_answer(answer: Answer) -> None:
            await deliver(await self.settle(answer))
        return on_answer

    async def settle(self, answer: Answer) -> Answer:
        """Charge the Answer's usage; the Answer as the client gets it (marked when its budget ran out)."""
        held = self._held.pop(answer.response_id, None)
        if held is None:
            return answer
        await self._charge(held, answer.usage.prompt_tokens, answer.usage.completion_tokens)
        try:
            exhausted = await self.budgets.exhausted(answer.response_id)
            await self.budgets.close(answer.response_id)
        except (RedisError, OSError) as exc:
            log.warning("token budget of %s not closed: %s", answer.response_id, exc)
            return answer
        return out_of_budget(answer, held.reservation.tokens) if exhausted else answer

    def release(self, response_id: str, *, abandoned: bool, published: bool = True) -> None:
        """The request ended without a settled Answer: abandoned (charged what its model calls used or still
        hold) or never published (the reservation is given back)."""
        held = self._held.pop(response_id, None)
        if held is None:
            return
        work = self._abandon(held, response_id) if published and abandoned else self._give_back(held, response_id)
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _abandon(self, held: Held, response_id: str) -> None:
        """Close the budget (no further model call runs) and charge what it lost; all of it if unreadable."""
        left = await self.budgets.close(response_id)
        spent = held.reservation.tokens - (left if left is not None else 0)
        prompt = min(held.prompt, spent)
        await self._charge(held, prompt, spent - prompt)

    async def _give_back(self, held: Held, response_id: str) -> None:
        await self.limiter.settle(held.reservation, 0, 0, requests=0)
        await self.budgets.close(response_id)

    async def _charge(self, held: Held, prompt: int, completion: int) -> None:
        cost = held.price.micros(prompt, completion) if held.price else None
        try:
            await self.limiter.settle(held.reservation, prompt + completion, cost or 0)
            await self.usage().record(tenant_id=held.tenant_id, key_id=held.key_id, mode=held.mode, model=held.model,
                                      requests=1, prompt_tokens=prompt, completion_tokens=completion, cost_micros=cost)
        except Exception:  # the answer matters more than its accounting; the reservation stays charged
            log.exception("usage of %s/%s not settled", held.tenant_id, held.key_id)

    async def _quietly(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("reservation not released")

    async def aclose(self) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)


def out_of_budget(answer: Answer, tokens: int) -> Answer:
    """An Answer whose request ran out of token budget: finish "length", and it says so plainly."""
    note = OUT_OF_BUDGET.format(tokens=tokens)
    if answer.tool_calls:
        return answer.model_copy(update={"finish_reason": "length"})
    content = f"{answer.content}\n\n{note}" if answer.content and answer.error is None else note
    return answer.model_copy(update={"finish_reason": "length", "content": content, "error": None})
