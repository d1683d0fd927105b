"""Streams pieces of an answer to the `deltas` topic, in order, without holding up the model stream.

Pieces are queued as they are generated; one sender task publishes them, merging the pieces of one
channel that piled up while the previous publish waited for the broker. `seq` counts the published
deltas of one request (0, 1, 2, ... across both channels), so a consumer can drop repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

from moe_core.contracts import AnswerDelta
from moe_core.runtime.bus import Bus

Channel = Literal["content", "reasoning"]


class DeltaSender:
    def __init__(self, bus: Bus, topic: str, envelope: dict[str, Any], stage: str = "merger",
                 muted: bool = False) -> None:
        """topic: the stage's `deltas` topic (named by the stage, which declares it published)."""
        self.bus = bus
        self.topic = topic
        self.muted = muted  # nothing is published (a guardrail sees the answer first: not even the reasoning)
        self.envelope = envelope
        self.stage = stage
        self.seq = 0
        self.sent: dict[str, str] = {"content": "", "reasoning": ""}
        self._queue: list[tuple[Channel, str]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def put(self, channel: Channel, text: str) -> None:
        if not text or self.muted:
            return
        self._queue.append((channel, text))
        self.sent[channel] += text
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="delta-sender")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                for channel, text in _merge(batch):
                    delta = AnswerDelta(**self.envelope, seq=self.seq, channel=channel, content=text,
                                        stage=self.stage)
                    await self.bus.publish(delta, self.topic)
                    self.seq += 1
            if self._closing:
                return

    async def close(self) -> None:
        """Publish what is queued and stop (raises what the sender hit, e.g. a broker error)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _merge(batch: list[tuple[Channel, str]]) -> list[tuple[Channel, str]]:
    out: list[tuple[Channel, str]] = []
    for channel, text in batch:
        if out and out[-1][0] == channel:
            out[-1] = (channel, out[-1][1] + text)
        else:
            out.append((channel, text))
    return out
