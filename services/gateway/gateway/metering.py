"""The limits hook of the chat flow: reserve before a request enters the fleet, settle on its Answer.

`reserve` runs in ChatService.start for every API (chat completions, messages, responses): the estimate
is `(prompt estimate + max tokens) x MOE_LIMIT_RESERVE_MULTIPLIER`, and its cost when the model has a price.
`settling` wraps the answers subscriber: the Answer's usage replaces the reservation and is recorded (usage
table, Prometheus) before the client sees the answer. A request abandoned before its Answer (client gone,
deadline) is charged its reservation: the fleet may have spent it.
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

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4


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
    """(prompt, completion) tokens reserved for a request: its text at 4 characters a token (rounded up),
    and its max_tokens (or the default), both times the multiplier."""
    chars = sum(len(m.content) + len(json.dumps(m.tool_calls or [])) for m in request.messages)
    chars += len(json.dumps(request.tools)) if request.tools else 0
    prompt = math.ceil(chars / CHARS_PER_TOKEN)
    completion = request.params.max_tokens or default_completion
    return math.ceil(prompt * multiplier), math.ceil(completion * multiplier)


class Metering:
    def __init__(self, settings: GatewaySettings, limiter: Limiter, usage: Callable[[], UsageStore]) -> None:
        self.settings = settings
        self.limiter = limiter
        self.usage = usage
        self._held: dict[str, Held] = {}
        self._background: set[asyncio.Task[None]] = set()

    def price(self, model: str, mode: str) -> ModelPrice | None:
        prices = self.settings.model_prices
        return prices.get(model) or prices.get(mode)

    async def reserve(self, key: ApiKey | None, request: ChatRequest, model: str) -> None:
        """Hold the request's estimate against its key's and tenant's limits, or raise 429 (LimitExceeded)."""
        if key is None:  # not an authenticated client request (internal use)
            return
        prompt, completion = estimate(request, self.settings.limit_completion_tokens,
                                      self.settings.limit_reserve_multiplier)
        price = self.price(model, request.mode)
        cost = price.micros(prompt, completion) if price else 0
        tenant = request.tenant_id
        counters = self.limiter.counters([("key", key.id, key.limits), ("tenant", tenant, key.limits_of(tenant))],
                                         priced=price is not None)
        try:
            reservation = await self.limiter.reserve(counters, prompt + completion, cost)
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
            await self.settle(answer)
            await deliver(answer)
        return on_answer

    async def settle(self, answer: Answer) -> None:
        held = self._held.pop(answer.response_id, None)
        if held is not None:
            await self._charge(held, answer.usage.prompt_tokens, answer.usage.completion_tokens)

    def release(self, response_id: str, *, abandoned: bool, published: bool = True) -> None:
        """The request ended without a settled Answer: abandoned (charged its reservation) or never
        published (the reservation is given back)."""
        held = self._held.pop(response_id, None)
        if held is None:
            return
        if published and abandoned:
            work = self._charge(held, held.prompt, held.completion)
        else:
            work = self.limiter.settle(held.reservation, 0, 0, requests=0)
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
