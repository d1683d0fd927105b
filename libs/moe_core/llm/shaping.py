"""Output shaping per mode (code only, a word limit, a report heading), on a token stream or a whole text.

Every shaper is a small state machine: `feed(piece)` returns what may be shown now, `flush()` what is
left at the end. Feeding a text in any number of pieces gives exactly what feeding it whole gives, so the
streamed answer and the final `Answer.content` always agree.
"""

from __future__ import annotations

from typing import Protocol

from moe_core.llm.modes import Mode, get_mode

REPORT_HEADING = "## Summary\n\n"


class Shaper(Protocol):
    def feed(self, piece: str) -> str: ...

    def flush(self) -> str: ...


class Trim:
    """Drops leading and trailing whitespace (held back until more text follows)."""

    def __init__(self) -> None:
        self.started = False
        self.pending = ""

    def feed(self, piece: str) -> str:
        if not self.started:
            piece = piece.lstrip()
            if not piece:
                return ""
            self.started = True
        text = self.pending + piece
        body = text.rstrip()
        self.pending = text[len(body):]
        return body

    def flush(self) -> str:
        self.pending = ""
        return ""


class WordLimit:
    """At most `limit` words; whitespace between words is kept, the rest is dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.words = 0
        self.in_word = False
        self.pending_ws = ""
        self.done = False

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for ch in piece:
            if self.done:
                break
            if ch.isspace():
                self.in_word = False
                if self.words:
                    self.pending_ws += ch
                continue
            if not self.in_word:
                if self.words == self.limit:
                    self.done = True
                    break
                self.words += 1
                self.in_word = True
                out.append(self.pending_ws)
                self.pending_ws = ""
            out.append(ch)
        return "".join(out)

    def flush(self) -> str:
        self.pending_ws = ""
        return ""


class CodeOnly:
    """Only fenced code blocks (prose between them is dropped); a text without any fence stays whole."""

    def __init__(self) -> None:
        self.line = ""
        self.in_fence = False
        self.seen_fence = False
        self.emitted = False
        self.held: list[str] = []

    def feed(self, piece: str) -> str:
        self.line += piece
        out: list[str] = []
        while "\n" in self.line:
            line, self.line = self.line.split("\n", 1)
            out.append(self._line(line))
        return "".join(out)

    def _line(self, line: str) -> str:
        if line.strip().startswith("```"):
            fence = line.strip()
            if self.in_fence:
                self.in_fence = False
                return "\n```"
            self.in_fence = True
            self.seen_fence = True
            self.held = []
            separator = "\n\n" if self.emitted else ""
            self.emitted = True
            return separator + fence
        if self.in_fence:
            return "\n" + line
        if not self.seen_fence:
            self.held.append(line)
        return ""

    def flush(self) -> str:
        tail = self._line(self.line) if self.line else ""
        self.line = ""
        if not self.seen_fence:
            return "\n".join(self.held).strip()
        return tail + "\n```" if self.in_fence else tail


class ReportHeading:
    """A report starts with a heading: `## Summary` is put in front of text that does not."""

    def __init__(self) -> None:
        self.started = False
        self.buffer = ""

    def feed(self, piece: str) -> str:
        if self.started:
            return piece
        self.buffer += piece
        text = self.buffer.lstrip()
        if not text:
            return ""
        self.started = True
        return text if text.startswith("#") else REPORT_HEADING + text

    def flush(self) -> str:
        return ""


class Chain:
    def __init__(self, *shapers: Shaper) -> None:
        self.shapers = shapers

    def feed(self, piece: str) -> str:
        for shaper in self.shapers:
            piece = shaper.feed(piece)
        return piece

    def flush(self) -> str:
        out = ""
        for shaper in self.shapers:
            out = shaper.feed(out) + shaper.flush()
        return out


def for_mode(mode: Mode | str | None) -> Chain:
    """The shaping of a mode's final text (always trimmed)."""
    mode = mode if isinstance(mode, Mode) else get_mode(mode)
    shapers: list[Shaper] = [Trim()]
    if mode.code_only:
        shapers.append(CodeOnly())
    if mode.sections:
        shapers.append(ReportHeading())
    if mode.word_limit:
        shapers.append(WordLimit(mode.word_limit))
    return Chain(*shapers)


def shape(mode: Mode | str | None, text: str) -> str:
    chain = for_mode(mode)
    return chain.feed(text) + chain.flush()
