"""Which streams may be resumed, by whom, and how to render them again (gateway.resume).

A stream's record lives in Redis for as long as its request can still be answered: the API, the key that
opened it, the request's envelope (not its messages) and what its renderer needs (e.g. the reasoning
format). A generation counter per stream tells the connection that lost its client whether another one
took the stream over before its Cancel goes out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.session import RequestRun
from moe_core.access.request_auth import current_key
from moe_core.contracts import ChatRequest

log = logging.getLogger(__name__)
Api = Literal["chat", "messages", "responses"]


class StreamRecord(BaseModel):
    api: Api
    key_id: str
    tenant_id: str
    request: dict[str, Any]  # the ChatRequest without its messages and tools
    spec: dict[str, Any]  # the renderer's options

    def chat_request(self) -> ChatRequest:
        """The request as a resumed run needs it: its envelope and mode (the messages are not kept)."""
        return ChatRequest.model_validate({**self.request, "messages": [{"role": "user", "content": "-"}]})


class StreamRegistry:
    def __init__(self, redis: Redis, namespace: str, *, grace_s: float, deadline_grace_s: float) -> None:
        self.redis = redis
        self.prefix = f"gateway:stream:{namespace}"
        self.grace_s = grace_s
        self.deadline_grace_s = deadline_grace_s

    def _ttl(self, request: ChatRequest) -> int:
        return max(1, int(request.remaining_seconds() + self.deadline_grace_s + self.grace_s + 60))

    async def register(self, run: RequestRun, api: Api, spec: dict[str, Any]) -> None:
        """Remember the stream (quietly: without Redis it still streams, it just cannot be resumed)."""
        request = run.request
        key = current_key.get()
        record = StreamRecord(api=api, key_id=key.id if key is not None else "", tenant_id=request.tenant_id,
                              request=request.model_dump(mode="json", exclude={"messages", "tools"}), spec=spec)
        try:
            await self.redis.set(f"{self.prefix}:{request.response_id}", record.model_dump_json(),
                                 ex=self._ttl(request))
        except (RedisError, OSError) as exc:
            log.warning("stream %s cannot be resumed (Redis: %s)", request.response_id, exc)

    async def load(self, response_id: str) -> StreamRecord | None:
        raw = await self.redis.get(f"{self.prefix}:{response_id}")
        return StreamRecord.model_validate_json(raw) if raw else None

    async def attach(self, request: ChatRequest) -> int:
        """A new connection takes the stream over: its generation (the first connection's is 0)."""
        key = f"{self.prefix}:{request.response_id}:gen"
        generation = int(await self.redis.incr(key))
        await self.redis.expire(key, self._ttl(request))
        return generation

    async def unless_resumed(self, response_id: str, generation: int, cancel: Callable[[], Awaitable[object]]) -> None:
        """Run `cancel` (the Cancel, or settling an abandoned request's usage: gateway.metering) after the resume
        grace unless another connection took the stream over meanwhile."""
        await asyncio.sleep(self.grace_s)
        try:
            current = int(await self.redis.get(f"{self.prefix}:{response_id}:gen") or 0)
        except (RedisError, OSError):
            current = generation  # cannot tell: cancel, as without resumable streams
        if current == generation:
            await cancel()
