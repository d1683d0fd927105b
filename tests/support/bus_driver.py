"""Plays the fleet behind a gateway on the real broker: sees the requests and cancels the gateway
publishes, and publishes progress, deltas and answers for them — gateway tests without the backend."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from moe_core.contracts import Answer, AnswerDelta, Cancel, ChatRequest, Envelope, Progress, Topics, headers
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.producer_signing import ProducerSigner
from tests.support.topic_reader import stop_consumer, wait_until

M = TypeVar("M", bound=BaseModel)


class BusDriver:
    def __init__(self, bootstrap: str, namespace: str, signers: dict[str, ProducerSigner] | None = None) -> None:
        """signers: topic -> the producer key its messages are signed with (none: unsigned)."""
        self.bootstrap = bootstrap
        self.topics = Topics.for_namespace(namespace)
        self.signers = signers or {}
        self.requests: list[ChatRequest] = []
        self.cancels: list[Cancel] = []
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The topics exist (the gateway created them); read them from the start, without a group."""
        self._consumer = AIOKafkaConsumer(self.topics.requests, self.topics.cancel,
                                          **client_kwargs(bootstrap=self.bootstrap),
                                          group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
                                          fetch_max_wait_ms=10)
        self._producer = AIOKafkaProducer(**client_kwargs(bootstrap=self.bootstrap), linger_ms=0, acks="all")
        await self._consumer.start()
        await self._producer.start()
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:  # stop reading before the consumer closes under it
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await stop_consumer(self._consumer)
        if self._producer is not None:
            await self._producer.stop()

    async def _read(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            async with self._changed:
                if record.topic == self.topics.requests:
                    self.requests.append(ChatRequest.model_validate_json(record.value))
                else:
                    self.cancels.append(Cancel.model_validate_json(record.value))
                self._changed.notify_all()

    async def _wait_for(self, found: Any, what: str, timeout_s: float) -> Any:
        return await wait_until(self._changed, found, timeout_s, f"no {what} within {timeout_s}s")

    async def request(self, marker: str, timeout_s: float = 20) -> ChatRequest:
        """The request whose messages mention `marker`."""
        def found() -> ChatRequest | None:
            return next((r for r in self.requests if any(marker in m.content for m in r.messages)), None)
        result: ChatRequest = await self._wait_for(found, f"request with {marker}", timeout_s)
        return result

    async def cancel(self, response_id: str, timeout_s: float = 20) -> Cancel:
        def found() -> Cancel | None:
            return next((c for c in self.cancels if c.response_id == response_id), None)
        result: Cancel = await self._wait_for(found, f"Cancel for {response_id}", timeout_s)
        return result

    async def publish(self, message: Envelope, topic: str, marks: dict[str, str] | None = None,
                      signer: ProducerSigner | None = None) -> None:
        """`message` on `topic`, signed by `signer` (else the topic's, if any); `marks`: headers of the caller's
        (a forgery's claims)."""
        assert self._producer is not None
        value, key, kind = message.model_dump_json().encode(), message.response_id.encode(), type(message).__name__
        signer = signer or (self.signers.get(topic) if marks is None else None)
        hdrs = None if signer is None and marks is None else {headers.MESSAGE_TYPE: kind, **(marks or {})}
        if signer is not None and hdrs is not None:
            hdrs |= {headers.PRODUCER: signer.name, **signer.headers(topic, key, value, kind)}
        await self._producer.send_and_wait(topic, value, key=key, headers=None if hdrs is None else
                                           [(name, text.encode()) for name, text in hdrs.items()])

    async def progress(self, request: ChatRequest, stage: str, event: str, detail: str = "") -> None:
        await self.publish(Progress(**request.child_fields(), stage=stage, event=event, detail=detail),
                           self.topics.progress)

    async def delta(self, request: ChatRequest, seq: int, content: str, channel: str = "content",
                    stage: str = "merger") -> None:
        await self.publish(AnswerDelta(**request.child_fields(), seq=seq, content=content, channel=channel,  # type: ignore[arg-type]
                                       stage=stage), self.topics.deltas)

    async def answer(self, request: ChatRequest, content: str = "", **fields: Any) -> Answer:
        answer = Answer(**request.child_fields(), mode=request.mode, content=content, **fields)
        await self.publish(answer, self.topics.answers)
        return answer
