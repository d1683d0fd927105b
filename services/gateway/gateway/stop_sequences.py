"""Stop sequences (OpenAI `stop`, Anthropic `stop_sequences`), applied to the answer the client gets.

The answer ends before the first occurrence of any of the request's stop sequences (the sequence itself is not
included), whichever model wrote it (an expert on the fast path, the judge, the critic's revision). While
streaming, text that may be the start of a stop sequence is held back until it is clear: what the client sees
is always a prefix of the final, cut answer. Usage still counts what the models generated.
"""

from __future__ import annotations

from moe_core.contracts import Answer


def first_stop(text: str, stops: list[str]) -> tuple[int, str] | None:
    """(index, sequence) of the earliest stop sequence in `text` (the longest one where several start there)."""
    found: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop) if stop else -1
        if at >= 0 and (found is None or at < found[0] or (at == found[0] and len(stop) > len(found[1]))):
            found = (at, stop)
    return found


def cut(answer: Answer, stops: list[str] | None) -> tuple[Answer, str | None]:
    """The answer ended at its first stop sequence, finish_reason "stop"; and the sequence (None: none found)."""
    found = first_stop(answer.content, stops or [])
    if found is None or answer.tool_calls:
        return answer, None
    at, stop = found
    return answer.model_copy(update={"content": answer.content[:at], "finish_reason": "stop"}), stop


class StopFilter:
    """Streamed text with the stop sequences applied: `feed` returns what may be sent now."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in stops or [] if s]
        self.held = ""  # not yet sent: it may begin a stop sequence
        self.stopped: str | None = None

    def feed(self, text: str) -> str:
        if self.stopped is not None or not self.stops:
            return "" if self.stopped is not None else text
        pending = self.held + text
        found = first_stop(pending, self.stops)
        if found is not None:
            self.held, self.stopped = "", found[1]
            return pending[:found[0]]
        keep = max((n for s in self.stops for n in range(1, len(s)) if pending.endswith(s[:n])), default=0)
        self.held = pending[len(pending) - keep:] if keep else ""
        return pending[:len(pending) - keep]
