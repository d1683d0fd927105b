"""A request's token budget, shared by every stage that calls a model for it.

The gateway opens the budget (a Redis counter per response_id) with the tokens it reserved against the key's
and tenant's limits, before the request enters the fleet. Every model call of the request (planner, experts,
research, thinking, judge, critic: all go through InferenceClient) first *takes* an upper bound of what it can
use — a bound on its prompt plus its max_tokens — and only then runs, with max_tokens cut to what is left; when
it is done, what it did not use is given back. A call for which too little is left does not run (an
InferenceError of kind "budget"), and the budget is marked exhausted so the gateway can say so.

So the usage of all calls together never exceeds the budget, provided each inference server stops at
max_tokens and counts no more prompt tokens than `prompt_bound` — the UTF-8 bytes of the messages (a byte-level
BPE or byte-fallback tokenizer never makes more tokens than bytes) plus a margin per message for the chat
template's special tokens.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from moe_core.runtime import redis_batch

PER_MESSAGE = 16  # chat-template tokens a message may add (role markers, separators)
PER_CALL = 32  # a template's tokens around the whole conversation (BOS, generation prompt, tool preamble)

TAKE = """
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
left = tonumber(left)
local prompt, want = tonumber(ARGV[1]), tonumber(ARGV[2])
if left < prompt + 1 then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return -2
end
local grant = left - prompt
if want > 0 and want < grant then grant = want end
redis.call('DECRBY', KEYS[1], prompt + grant)
return grant
"""
CLOSE = """
local left = redis.call('GET', KEYS[1])
if left then redis.call('SET', KEYS[1], '0', 'KEEPTTL') end
return left
"""
GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 0
"""


IMAGE_TOKENS = 16384  # an image part: what a vision encoder makes of one image at most (Qwen2.5-VL at its
# default max_pixels: 16384; LLaVA-1.6 2880, Llama 3.2 Vision 6404, Gemma 3 256), not its base64 bytes


def _text_only(message: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The message without its image parts (OpenAI content parts; moe_core.llm.input_limits.images), and how many it
    had."""
    content = message.get("content")
    if not isinstance(content, list):
        return message, 0
    kept = [p for p in content if not (isinstance(p, dict) and p.get("type") == "image_url")]
    return {**message, "content": kept}, len(content) - len(kept)


def prompt_bound(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """An upper bound of the prompt tokens a server counts for these messages (and tool definitions); an image
    counts IMAGE_TOKENS."""
    size = 0
    for message in messages:
        text, images = _text_only(message)
        size += len(json.dumps(text, ensure_ascii=False).encode()) + images * IMAGE_TOKENS
    size += len(json.dumps(tools, ensure_ascii=False).encode()) if tools else 0
    return size + PER_MESSAGE * len(messages) + PER_CALL


class BudgetExhausted(Exception):
    def __init__(self, response_id: str, needed: int) -> None:
        super().__init__(f"the token budget of request {response_id} cannot cover another model call "
                         f"(its prompt alone may count {needed} tokens)")
        self.needed = needed


class TokenBudgets:
    """The budgets of one namespace's requests."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.prefix = f"moe:budget:{namespace}"
        self._take = redis.register_script(TAKE)
        self._give_back = redis.register_script(GIVE_BACK)
        self._close = redis.register_script(CLOSE)

    def key(self, response_id: str) -> str:
        return f"{self.prefix}:{response_id}"

    async def open(self, response_id: str, tokens: int, ttl_s: int) -> None:
        """The gateway: this request's model calls may use `tokens` in all."""
        await self.redis.set(self.key(response_id), tokens, ex=max(1, ttl_s))

    async def close(self, response_id: str) -> int | None:
        """The request is over: no further call may run (the budget stays, spent, until it expires); returns
        what was left (None: it had no budget)."""
        left = await self._close(keys=[self.key(response_id)])
        return None if left is None else int(left)

    async def take(self, response_id: str, prompt: int, max_tokens: int | None) -> int | None:
        """Hold `prompt` + the call's max_tokens; returns the max_tokens the call may use (max_tokens or less),
        None when the request has no budget (not metered), or raises BudgetExhausted."""
        key = self.key(response_id)
        keys, args = [key, f"{key}:exhausted"], [prompt, max_tokens or 0, 3600]
        if redis_batch.pending():  # give-backs deferred by earlier calls of this handler go out first, same trip
            pipe = self.redis.pipeline(transaction=False)
            redis_batch.flush_into(pipe)
            pipe.eval(TAKE, len(keys), *keys, *args)  # (EVAL, not EVALSHA: a pipeline would ask SCRIPT EXISTS first)
            grant = int((await pipe.execute())[-1])
        else:
            grant = int(await self._take(keys=keys, args=args))
        if grant == -1:
            return None
        if grant == -2:
            raise BudgetExhausted(response_id, prompt + 1)
        return grant

    async def give_back(self, response_id: str, tokens: int) -> None:
        """What a call held but did not use (negative: it used more than it held). Inside a handler's
        `redis_batch.deferring` scope it goes out with the handler's next round trip (the next call's take, the
        stored outcome), before anything the handler stores or publishes after it."""
        if not tokens:
            return
        key = self.key(response_id)
        if not redis_batch.defer(lambda pipe: pipe.eval(GIVE_BACK, 1, key, tokens)):
            await self._give_back(keys=[key], args=[tokens])

    async def exhausted(self, response_id: str) -> bool:
        """A call of this request was refused for want of budget."""
        return bool(await self.redis.exists(f"{self.key(response_id)}:exhausted"))

    async def left(self, response_id: str) -> int | None:
        value = await self.redis.get(self.key(response_id))
        return None if value is None else int(value)
