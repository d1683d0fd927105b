"""When a term whose held classification reviewers rejected is classified again (pure: the gap as the graph holds
it, moe_core.knowledge.graph.gaps). Reviewers decided against a classification, so the next question does not put the
same
one in front of them again at once: a new gap of the term waits MOE_GAP_REVIEW_RETRY_AFTER_S after the rejection
(the model is not asked in a loop, nor the reviewers), the new classification may not name a class reviewers
rejected for the term (the class list the model chooses from leaves them out), and after
MOE_GAP_MAX_REVIEW_REJECTIONS rejections the term is no longer classified by itself: it stays `rejected` for the
operators until it is known otherwise (an import, an approved memory text), which heals the gap."""

from __future__ import annotations

from typing import Any, Literal

HeldBack = Literal["cooling_down", "review_limit"]


def held_back(gap: dict[str, Any], retry_after_s: float, max_rejections: int, now: float) -> HeldBack | None:
    """Why a rejected gap is not classified now (None: it may be). Only reviewers' rejections hold a gap back; a
    term the model did not classify is classified again as before (its classification remembered for a while)."""
    rejections = int(gap.get("review_rejections") or 0)
    if gap.get("state") != "rejected" or rejections == 0:
        return None
    if rejections >= max_rejections:
        return "review_limit"
    by_review = gap.get("reviewed_at") is not None and gap.get("decided_at") == gap.get("reviewed_at")
    if by_review and now < float(gap["reviewed_at"]) + retry_after_s:
        return "cooling_down"
    return None


def classes_left(classes: list[str], gap: dict[str, Any]) -> list[str]:
    """The classes a new classification may choose: the ontology's, without those reviewers rejected for the term."""
    rejected = set(gap.get("rejected_classes") or [])
    return [c for c in classes if c not in rejected]


def memo_round(gap: dict[str, Any]) -> str:
    """The classification memo's suffix: a new classification after each rejection, not the rejected one again."""
    rejections = int(gap.get("review_rejections") or 0)
    return f":review{rejections}" if rejections else ""
