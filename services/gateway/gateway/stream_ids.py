"""SSE event ids that say where a stream is, so that any replica can continue it (gateway.resume).

An id is `<response_id>.<path>.<frame>`:
- path: the bus events the stream consumed so far, in order, run-length encoded: `p2d14` is two Progress
  records, then fourteen AnswerDelta records (`a`: the Answer). Every record of a request is keyed by its
  response_id, so each topic holds them in one partition, in one order; what differs between two readers
  is only the interleaving of the three topics, and the path records it. A replica that reads the records
  back and feeds them in that interleaving renders the same frames.
- frame: the frame's index among those rendered since the last consumed event (before any event, the
  preamble: path empty).
Keep-alives (comments, Anthropic's idle pings) carry no id: they are not part of the answer. A keep-alive
comment is one line with no blank line after it (`KEEP_ALIVE`): a blank line ends an event, and a client
that has seen an id dispatches an event at every blank line even without data (the SSE spec keeps the
last event id; the official openai SDK then fails to parse the empty data).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import pairwise

from moe_core.contracts import Answer, AnswerDelta, Progress

KEEP_ALIVE = ": keep-alive\n"
KIND_OF: dict[type, str] = {Progress: "p", AnswerDelta: "d", Answer: "a"}
_ID = re.compile(r"^([0-9a-f]{32})\.((?:[pda][1-9][0-9]{0,6}){0,512})\.([0-9]{1,6})$")
_RUN = re.compile(r"([pda])([0-9]+)")


@dataclass(frozen=True)
class Position:
    """Where a client is in a stream: the last frame it received."""

    response_id: str
    path: tuple[tuple[str, int], ...]
    frame: int

    @property
    def events(self) -> int:
        return sum(count for _, count in self.path)

    def render(self) -> str:
        return f"{self.response_id}.{''.join(f'{kind}{count}' for kind, count in self.path)}.{self.frame}"

    @classmethod
    def parse(cls, raw: str) -> Position | None:
        """The position an id names; None when it is not an id this gateway sends."""
        match = _ID.match(raw.strip())
        if match is None:
            return None
        path = tuple((kind, int(count)) for kind, count in _RUN.findall(match.group(2)))
        merged = any(a[0] == b[0] for a, b in pairwise(path))  # a stream's runs never repeat a kind
        answer = [i for i, (kind, count) in enumerate(path) if kind == "a"]  # the Answer comes once, last
        if merged or answer not in ([], [len(path) - 1]) or (answer and path[-1][1] != 1):
            return None
        return cls(match.group(1), path, int(match.group(3)))


class StreamCursor:
    """The position of a live stream: RequestRun.events() reports each bus event it consumes (and idle
    keep-alives); `with_ids` numbers the frames rendered after it."""

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.runs: list[list[str | int]] = []
        self.events = 0
        self.frame = -1
        self.idle = False

    def consume(self, event: Answer | AnswerDelta | Progress) -> None:
        kind = KIND_OF[type(event)]
        if self.runs and self.runs[-1][0] == kind:
            self.runs[-1][1] = int(self.runs[-1][1]) + 1
        else:
            self.runs.append([kind, 1])
        self.events += 1
        self.frame = -1
        self.idle = False

    def position(self) -> Position:
        return Position(self.response_id, tuple((str(k), int(n)) for k, n in self.runs), self.frame)


def split_events(chunk: str) -> list[str]:
    """One rendered chunk as its SSE events (a renderer may yield several in one string)."""
    return [f"{part}\n\n" for part in chunk.split("\n\n") if part]


async def with_ids(frames: AsyncIterator[str], cursor: StreamCursor, after: Position | None = None
                   ) -> AsyncIterator[str]:
    """The renderer's frames with an `id:` line on each event; with `after`, the frames up to and
    including that position are left out (the client has them)."""
    async for chunk in frames:
        if chunk.startswith(":"):  # a keep-alive comment: no id, passed on as it is
            yield chunk
            continue
        out = []
        for event in split_events(chunk):
            if event.startswith(":") or cursor.idle:  # keep-alive: no id, never part of what is skipped
                out.append(event)
                continue
            cursor.frame += 1
            if after is not None and (cursor.events, cursor.frame) <= (after.events, after.frame):
                continue
            out.append(f"id: {cursor.position().render()}\n{event}")
        if out:
            yield "".join(out)
