"""Pure critic logic: the review prompt, reading the verdict, the answer the user gets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from moe_core.contracts import Answer, Draft, ErrorInfo, Usage
from moe_core.llm import shaping, structured
from moe_core.runtime.run_versions import prompt_used

DOMAINS = {"medical_consult": "medical", "legal_advisor": "legal"}
UNREVIEWED_NOTE = "\n\n(Note: this answer could not be double-checked.)"
UNSAFE_WITHHELD = ("The answer was withheld: the review found it unsafe and no corrected answer in the requested "
                   "format was available.")
_CONFIRMED = re.compile(r"^[\W_]*CONFIRMED(?![A-Za-z])")  # upper case: "Confirmed cases ..." is an answer
_LABEL = re.compile(r"^\s*\**\s*(?:corrected(?: answer)?|correction)\s*\**\s*:\s*\**\s*", re.IGNORECASE)
_FAULT = re.compile(r"^[\W_]*(WRONG|UNSAFE)[\W_]*?:\s*\**\s*", re.IGNORECASE)
# The review prompt's own scaffolding (review_messages): a reply that repeats it is the prompt echoed, not an
# answer for the user (a small model's "correction" was "Question: …\n\nAnswer to review:\n…").
_ECHO = re.compile(r"^\s*question:|^\s*answer to review:", re.IGNORECASE | re.MULTILINE)
Kind = Literal["right", "wrong", "unsafe"]


@dataclass(frozen=True)
class Verdict:
    """right: the draft stands; wrong (a factual error) or unsafe (dangerous or unlawful advice, a missing
    essential warning): `corrected` replaces it. A correction without a label is a "wrong" verdict: the critic
    did not let the draft stand."""

    kind: Kind
    corrected: str = ""

    @property
    def confirmed(self) -> bool:
        return self.kind == "right"


def domains(draft: Draft) -> str:
    names = sorted({DOMAINS[c] for c in draft.categories if c in DOMAINS})
    return " and ".join(names) or "sensitive"


def review_messages(draft: Draft) -> list[dict[str, str]]:
    system = (
        f"You review an answer to a {domains(draft)} question before it reaches the user. Check it for "
        "factual errors, dangerous or unlawful advice and missing essential warnings. If it is correct and "
        "safe, reply with exactly: CONFIRMED. If it has a factual error, reply WRONG: and the corrected complete "
        "answer; if it is dangerous, unlawful or lacks an essential warning, reply UNSAFE: and the corrected "
        "complete answer. The corrected answer is written for the user, without commentary about the review."
    )
    if draft.response_format is not None:  # the client asked for JSON: a correction must be JSON in that format
        system += (" The answer is JSON in a format the user's program requires: a corrected answer is the whole "
                   "corrected JSON in the same format, nothing else after WRONG: or UNSAFE:.")
    prompt_used("critic.review.structured" if draft.response_format is not None else "critic.review", system)
    user = f"Question: {draft.question}\n\nAnswer to review:\n{draft.answer.content}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def verdict(reply: str) -> Verdict | None:
    """CONFIRMED (right), WRONG:/UNSAFE: and the corrected answer, or None when the reply says nothing usable (empty,
    or the review prompt's `Question:` / `Answer to review:` lines echoed back: the draft then goes out marked
    unreviewed)."""
    text = reply.strip()
    if not text:
        return None
    first_line = text.splitlines()[0]
    if re.sub(r"[\W_]", "", first_line).lower() == "confirmed" or _CONFIRMED.match(text):
        return Verdict("right")
    kind: Kind = "wrong"
    if fault := _FAULT.match(text):
        kind = "unsafe" if fault.group(1).lower() == "unsafe" else "wrong"
        text = text[fault.end():]
    corrected = _LABEL.sub("", text, count=1).strip()
    if not corrected or _ECHO.search(corrected):  # nothing, or the review prompt echoed: no usable verdict
        return None
    return Verdict(kind, corrected)


def reviewed(draft: Draft, result: Verdict, usage: Usage) -> Answer:
    """The answer the user gets: the draft when confirmed, else the corrected text (shaped for the mode). A
    structured request's answer is never turned into prose: a correction replaces it only when it is JSON in the
    request's format (unshaped); else a wrong draft stays as it is, flagged (critic.flags) and marked in the
    reasoning, and an unsafe one is withheld (content_filter, as a guardrail's refusal)."""
    answer = draft.answer
    note = "Critic: confirmed the draft." if result.confirmed else f"Critic: corrected the draft ({result.kind})."
    update: dict[str, Any] = {"usage": answer.usage + usage, "model_calls": answer.model_calls + 1}
    fmt = draft.response_format
    if result.confirmed:
        pass
    elif fmt is None:
        update["content"] = shaping.shape(answer.mode, result.corrected)
    elif structured.mismatch(result.corrected, fmt) is None:
        update["content"] = result.corrected.strip()
    elif result.kind == "unsafe":
        note = "Critic: the draft is unsafe and its correction is not in the requested format: withheld."
        update.update(content=UNSAFE_WITHHELD, finish_reason="content_filter")
    else:
        note = (f"Critic: flagged the draft ({result.kind}); its correction is not in the requested format, so the "
                "draft's JSON is kept.")
    update["reasoning"] = _with_line(answer.reasoning, note)
    return answer.model_copy(update=update)


def unreviewed(draft: Draft, why: str) -> Answer:
    """No review possible (the model failed, the deadline passed): the draft, marked as not checked."""
    answer = draft.answer
    note = "" if draft.response_format is not None else UNREVIEWED_NOTE  # JSON stays JSON: the reasoning says it
    return answer.model_copy(update={"content": answer.content + note,
                                     "reasoning": _with_line(answer.reasoning, f"Critic: not reviewed ({why}).")})


def cancelled(draft: Draft) -> Answer:
    return draft.answer.model_copy(update={
        "content": "", "finish_reason": "error",
        "error": ErrorInfo(code="cancelled", message="the client cancelled the request")})


def _with_line(reasoning: str, line: str) -> str:
    return f"{reasoning.rstrip()}\n\n{line}" if reasoning.strip() else line
