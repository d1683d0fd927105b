"""Parsing of the expert output protocol (CORE_FINDING, DETAILS, GAPS, REFERRAL, CONFIDENCE), robustly.

Small models decorate tags (`**Core finding:**`, `## GAPS -`, `1. CONFIDENCE = High`), reorder them, or
leave them out. A missing CONFIDENCE means medium; text without any tag is the answer as it is. The
answer shown to users is CORE_FINDING plus DETAILS, capped at a maximum length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moe_core.contracts import EXPERT_CATEGORIES, Confidence

_TAG = re.compile(
    r"^[ \t>#*_\-\d.)]*(?P<tag>core[ _-]?findings?|details?|gaps?|referrals?|confidence)[ \t*_]*"
    r"(?:[:=\u2013\u2014-]|(?=[ \t]+(?:high|medium|low)\b))[ \t*_]*",
    re.IGNORECASE | re.MULTILINE)
_LEVEL = re.compile(r"\b(high|medium|low)\b", re.IGNORECASE)
_NOTHING = re.compile(r"^\W*(none|n/?a|nothing|no gaps?|no referral|-+)?\W*$", re.IGNORECASE)
_CANONICAL = {"core": "core_finding", "deta": "details", "gap": "gaps", "refe": "referral", "conf": "confidence"}
TRUNCATED = " [truncated]"


@dataclass
class ExpertOutput:
    content: str
    confidence: Confidence = "medium"
    core_finding: str = ""
    details: str = ""
    gaps: str = ""
    referral: str | None = None
    tagged: bool = False
    sections: dict[str, str] = field(default_factory=dict)

    def data(self) -> dict[str, object]:
        return {"core_finding": self.core_finding, "gaps": self.gaps, "referral": self.referral,
                "tagged": self.tagged}


def _canonical(tag: str) -> str:
    key = tag.lower().replace(" ", "").replace("_", "").replace("-", "")
    return next(name for prefix, name in _CANONICAL.items() if key.startswith(prefix))


def parse(text: str, max_chars: int) -> ExpertOutput:
    matches = list(_TAG.finditer(text))
    sections: dict[str, str] = {}
    loose = [text[: matches[0].start()] if matches else text]  # text outside any section
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = _canonical(match.group("tag"))
        body = text[match.end():end]
        if name == "confidence":  # only its line: what follows it is not part of the tag
            line, _, rest = body.partition("\n")
            body = line
            loose.append(rest)
        body = body.strip()
        sections[name] = f"{sections[name]}\n{body}".strip() if name in sections and name != "confidence" else body
    level = _LEVEL.search(sections.get("confidence", ""))
    confidence: Confidence = level.group(1).lower() if level else "medium"  # type: ignore[assignment]
    core, details = sections.get("core_finding", ""), sections.get("details", "")
    if core or details:
        content = "\n\n".join(part for part in (core, details) if part)
    else:
        content = "\n".join(part.strip() for part in loose if part.strip())
    gaps = sections.get("gaps", "")
    referral = sections.get("referral", "")
    return ExpertOutput(
        content=cap(content, max_chars), confidence=confidence, core_finding=core, details=details,
        gaps="" if _NOTHING.match(gaps) else gaps, referral=_referral(referral), tagged=bool(matches),
        sections=sections)


def _referral(text: str) -> str | None:
    if _NOTHING.match(text):
        return None
    lowered = text.lower().replace(" ", "_")
    known = next((c for c in EXPERT_CATEGORIES if c in lowered), None)
    return known or text[:200]


def cap(text: str, max_chars: int) -> str:
    text = text.strip()
    if len(text) <= max_chars:
        return text
    cut = text[: max(max_chars - len(TRUNCATED), 0)]
    space = cut.rfind(" ")
    if space > len(cut) * 0.8:
        cut = cut[:space]
    return cut.rstrip() + TRUNCATED
