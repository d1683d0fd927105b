"""Provenance of knowledge-graph facts: the judge tags them `[REF:entity]`; the tags are taken out of the
text (also while it streams) and come back as `Source(kind="graph")` entries of the answer."""

from __future__ import annotations

from moe_core.contracts import Source, TaskResult

TAG = "[REF:"
MAX_REF_CHARS = 200


class RefStripper:
    """A streaming filter: text in, text without `[REF:...]` tags (and the space before a tag) out.

    Whitespace is held back until the next visible character, so a tag never leaves a stray space and
    the result has no leading or trailing whitespace. Tags are collected in `refs` (first use order)."""

    def __init__(self) -> None:
        self.refs: list[str] = []
        self.started = False
        self.space = ""
        self.tag = ""

    def feed(self, piece: str) -> str:
        return "".join(self._char(ch) for ch in piece)

    def _char(self, ch: str) -> str:
        if self.tag:
            return self._in_tag(ch)
        if ch == "[":
            self.tag = ch
            return ""
        if ch.isspace():
            if self.started:
                self.space += ch
            return ""
        self.started = True
        out, self.space = self.space + ch, ""
        return out

    def _in_tag(self, ch: str) -> str:
        self.tag += ch
        if len(self.tag) <= len(TAG):
            if TAG.startswith(self.tag.upper()):
                return ""
            return self._not_a_tag()
        if ch == "]":
            ref = " ".join(self.tag[len(TAG):-1].split())
            if ref and ref not in self.refs:
                self.refs.append(ref)
            self.tag = ""
            self.space = ""
            return ""
        if ch == "\n" or len(self.tag) > len(TAG) + MAX_REF_CHARS:
            return self._not_a_tag()
        return ""

    def _not_a_tag(self) -> str:
        """What looked like a tag is text: show it (its last character may itself start a tag)."""
        text, self.tag = self.tag, ""
        head = self._visible(text[:-1])
        return head + self._char(text[-1])

    def _visible(self, text: str) -> str:
        if not text:
            return ""
        self.started = True
        out, self.space = self.space + text, ""
        return out

    def flush(self) -> str:
        text, self.tag = self.tag, ""
        out = self._visible(text)  # an unfinished tag is text; trailing whitespace is dropped
        self.space = ""
        return out


def graph_sources(refs: list[str], results: list[TaskResult]) -> list[Source]:
    """The knowledge-graph sources the judge referred to: the graph results' sources that name the entity
    (their ref is the relation id, which feedback can verify or flag); an entity no source names is
    returned as a source of its own."""
    known = [s for r in results if r.kind == "graph" for s in r.sources]
    out: list[Source] = []
    seen: set[str] = set()
    for entity in refs:
        needle = entity.lower()
        matches = [s for s in known if needle in (s.title or "").lower() or needle == s.ref.lower()]
        for source in matches or [Source(kind="graph", ref=entity, title=entity)]:
            if source.ref not in seen:
                seen.add(source.ref)
                out.append(source.model_copy(update={"kind": "graph"}))
    return out


def graph_context(results: list[TaskResult], cited: list[Source]) -> list[Source]:
    """The knowledge-graph facts the judge was given and did not cite, as `graph_context` sources: the reader sees
    what reviewed knowledge the answer was written with (a knowledge owner's trial: approved facts reached the judge
    and the answer showed none, since the local model writes no [REF:] tags). Only cited facts are `graph` sources,
    which a rating verifies or flags."""
    seen = {s.ref for s in cited}
    out: list[Source] = []
    for source in (s for r in results if r.kind == "graph" for s in r.sources if s.kind == "graph"):
        if source.ref not in seen:
            seen.add(source.ref)
            out.append(source.model_copy(update={"kind": "graph_context"}))
    return out
