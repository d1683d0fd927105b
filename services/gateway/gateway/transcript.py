"""What a client has been shown of one answer, and what is left to send when the final Answer arrives.

Bus events become protocol-neutral stream events (Text on the reasoning or content channel, KeepAlive,
Done); the OpenAI and Anthropic renderers turn those into their own SSE shapes.

Reconciliation with the final Answer (its `content` is always the whole answer):
- nothing was streamed: the whole content is sent;
- the streamed text is a prefix of the final content (ignoring leading and trailing whitespace of the
  streamed text): only the rest is sent, e.g. a gaps note the merger appended;
- otherwise (a critic corrected the answer, or the judge was re-run after a crash): the client cannot
  un-see what was streamed, so REVISED_NOTE and then the whole final content follow, and the end of the
  stream is marked revised (OpenAI: moe.revised; Anthropic: a separate text block).
The reasoning trace (Answer.reasoning) is reconciled with the streamed reasoning deltas the same way.

Reasoning comes before the answer: once answer text was sent, later progress and reasoning are not shown
(a `<think>` block or an Anthropic thinking block cannot follow the text it leads to). Progress, deltas
and answers travel on different topics, so a late progress event (e.g. an expert's "answered" after
the judge began) is normal and simply dropped. For the same reason a progress event can arrive while a
reasoning delta's line is still open (an expert's thinking streams on the deltas topic, the judge's
"judging" on the progress topic): it is held until that line ends, so no reasoning sentence is ever cut
by a progress line, and dropped if answer text or the final Answer comes first. When the final Answer
arrives before anything was shown (a cache hit, or a fast-path answer that overtook its progress
events), one summary line of how it was answered leads it (`summary_line`), so a streamed answer
always opens with its reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from moe_core.contracts import Answer, AnswerDelta, Progress

Channel = Literal["reasoning", "content"]
REVISED_NOTE = "\n\n[revised answer]\n\n"


@dataclass(frozen=True)
class Text:
    channel: Channel
    text: str


@dataclass(frozen=True)
class KeepAlive:
    pass


@dataclass(frozen=True)
class Done:
    answer: Answer
    revised: bool = False


StreamEvent: TypeAlias = Text | KeepAlive | Done


def progress_line(event: Progress) -> str:
    """One line of live progress, e.g. `planner: planned (general, math)`."""
    detail = f" ({event.detail})" if event.detail else ""
    return f"{event.stage}: {event.event}{detail}\n"


def summary_line(answer: Answer) -> str:
    """How an answer was produced, in one reasoning line (when no live progress was shown for it)."""
    if answer.cache_hit:
        return "answered from the cache\n"
    if answer.experts_used:
        return f"answered by: {', '.join(answer.experts_used)}\n"
    return ""


def remainder(streamed: str, final: str) -> tuple[str, bool]:
    """(what is left to send of `final` after `streamed`, whether the final text revises the stream)."""
    if not streamed.strip():
        return final, False
    head = streamed.lstrip()
    if final.startswith(head):
        return final[len(head):], False
    trimmed = head.rstrip()
    if final.startswith(trimmed):
        return final[len(trimmed):].lstrip(), False
    return REVISED_NOTE + final, True


class Transcript:
    """The client's view of one request. Deltas are de-duplicated by (stage, channel, seq): Kafka
    keeps one producer's order per response_id, a redelivered delta repeats an old seq."""

    def __init__(self) -> None:
        self.content = ""
        self.reasoning = ""
        self._last_seq: dict[tuple[str, str], int] = {}
        self._progress_shown = False
        self._mid_line = False  # the last reasoning shown was a delta that left its line open
        self._held: list[str] = []  # progress lines that arrived while a reasoning line was open

    def delta(self, delta: AnswerDelta) -> list[Text]:
        key = (delta.stage, delta.channel)
        if delta.seq <= self._last_seq.get(key, -1):
            return []
        self._last_seq[key] = delta.seq
        if not delta.content or (delta.channel == "reasoning" and self.content):
            return []
        if delta.channel == "content":
            self.content += delta.content
            self._held.clear()  # reasoning cannot follow answer text
            return [Text("content", delta.content)]
        self.reasoning += delta.content
        texts = [Text("reasoning", delta.content)]
        self._mid_line = not delta.content.endswith("\n")
        if not self._mid_line:
            texts += [Text("reasoning", line) for line in self._held]
            self._held.clear()
        return texts

    def progress(self, event: Progress) -> list[Text]:
        if self.content:
            return []
        self._progress_shown = True
        if self._mid_line:
            self._held.append(progress_line(event))
            return []
        return [Text("reasoning", progress_line(event))]

    def finish(self, answer: Answer) -> tuple[list[Text], bool]:
        """The texts still to send before the end of the stream, and whether the content was revised."""
        texts: list[Text] = []
        if not (self.content or self.reasoning or self._progress_shown) and (line := summary_line(answer)):
            texts.append(Text("reasoning", line))
        if answer.reasoning and not self.content:
            rest, _ = remainder(self.reasoning, answer.reasoning)
            if rest:
                texts.append(Text("reasoning", rest))
        revised = False
        if answer.content:
            rest, revised = remainder(self.content, answer.content)
            if rest:
                texts.append(Text("content", rest))
        self.reasoning += "".join(t.text for t in texts if t.channel == "reasoning")
        self.content += "".join(t.text for t in texts if t.channel == "content")
        return texts, revised
