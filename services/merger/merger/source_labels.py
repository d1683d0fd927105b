"""The judge reads its sources under headers like `#2 expert/creative_writer, medium:` (merger.synthesis). A small
model sometimes copies such a header into its answer (seen with the embedded model under `make up`); the client
should never see one. A streaming filter takes them out: a `#` at the start of a line is held back while what
follows can still become a header (regex's partial match), dropped with the blanks after it when it is one, and
shown as it was as soon as it cannot be."""

from __future__ import annotations

import regex

HEADER = regex.compile(r"#\d{1,2} [a-z_]+/[a-z_]+, (?:high|medium|low):")


class LabelStripper:
    def __init__(self) -> None:
        self.held = ""
        self.line_start = True
        self.after_header = False  # the blanks after a dropped header go with it

    def feed(self, piece: str) -> str:
        return "".join(self._char(ch) for ch in piece)

    def flush(self) -> str:
        out, self.held = self.held, ""
        return out

    def _char(self, ch: str) -> str:
        if self.held:
            self.held += ch
            found = HEADER.fullmatch(self.held, partial=True)
            if found is None:
                return self._shown(self.flush())
            if not found.partial:
                self.held, self.after_header = "", True
            return ""
        if self.after_header:
            if ch in " \t":
                return ""
            self.after_header = False
            if ch == "\n":
                self.line_start = True
                return ""
        if self.line_start and ch == "#":
            self.held = ch
            return ""
        return self._shown(ch)

    def _shown(self, text: str) -> str:
        if text:
            self.line_start = text.endswith("\n")
        return text
