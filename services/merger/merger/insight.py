"""The judge's insight block: when it merges two or more results into something no single one said, it ends its
answer with `<SYNTHESIS_INSIGHT>{"summary", "entities", "insight_type"}</SYNTHESIS_INSIGHT>` (the original's
block). The block is taken out of the answer — also while it streams, so the user never sees it — and becomes
the IngestEvent's `synthesis` (graph-ingest keeps it as a :Synthesis node)."""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from moe_core.contracts import SynthesisInsight

log = logging.getLogger(__name__)
OPEN, CLOSE = "<SYNTHESIS_INSIGHT>", "</SYNTHESIS_INSIGHT>"
MAX_BLOCK_CHARS = 4000
# 6 words more for the judge (tests/unit/planner/test_prompt_overhead.py), only when it merges several results
RULE = (f'New insight from combining sources? Append {OPEN}{{"summary":"…","entities":[…],'
        f'"insight_type":"comparison|causal|procedural|synthesis"}}{CLOSE}.')


class InsightStripper:
    """A streaming filter: text in, text before the block out. A tail that may be the start of the opening tag
    is held back until the next piece decides; everything from the tag on is kept in `block`, never shown."""

    def __init__(self) -> None:
        self.held = ""
        self.block: str | None = None  # the text after the opening tag, once it was seen

    def feed(self, piece: str) -> str:
        if self.block is not None:
            self.block = (self.block + piece)[:MAX_BLOCK_CHARS]
            return ""
        text = self.held + piece
        at = text.upper().find(OPEN)
        if at >= 0:
            self.held, self.block = "", text[at + len(OPEN):][:MAX_BLOCK_CHARS]
            return text[:at]
        keep = _partial_tag(text)
        self.held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        """What was held back at the end (a `<SYN…` that never became the tag is text)."""
        out, self.held = self.held, ""
        return out

    def insight(self) -> SynthesisInsight | None:
        """The block as an insight; None without a block, or one that is not the JSON object it should be."""
        if self.block is None:
            return None
        raw = self.block.split(CLOSE, 1)[0].strip().removeprefix("```json").removeprefix("```").removesuffix("```")
        try:
            data = json.loads(raw)
            found = SynthesisInsight.model_validate(data if isinstance(data, dict) else {})
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            log.info("the judge's insight block is not usable: %s", str(exc)[:200])
            return None
        entities = list(dict.fromkeys(e.strip() for e in found.entities if e.strip()))
        return found.model_copy(update={"summary": found.summary.strip(), "entities": entities,
                                        "insight_type": found.insight_type.strip().lower() or "synthesis"})


def _partial_tag(text: str) -> int:
    """How many characters at the end of `text` are a proper prefix of the opening tag."""
    upper = text.upper()
    for size in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(upper[-size:]):
            return size
    return 0
