"""The plan's `metadata_filters` (what scopes the tenant-document lookup downstream), extracted without a
model call: the domain from the categories the plan routed to, a document set, an entity and a time range
from explicit cues in the question.

- domain: each expert task's category mapped by moe_core.knowledge.memory.CATEGORY_DOMAINS (medical_consult ->
  medical, legal_advisor -> legal, ...); categories that name no subject (general, reasoning, ...) add none;
- document_set: `document set <name>`, `doc set <name>` or `in (the|my|our) <name> documents`;
- entity: a phrase in double quotes (the chunk must mention it);
- time_range: `in/during <year>`, `since/after/from <year or date>`, `before/until <year or date>`,
  `between <year> and <year>`.
A filter already in the plan wins over the extracted one of the same field."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from moe_core.contracts import ChatRequest, Plan
from moe_core.knowledge.memory import CATEGORY_DOMAINS, FilterError, parse_filters
from planner.settings import PlannerSettings

_YEAR = r"(?:19|20)\d\d"
_DAY = rf"{_YEAR}-\d\d-\d\d"
_SET = re.compile(r"\b(?:document|doc)[ -]set\s+[\"'\u201c]?([A-Za-z0-9][\w-]{0,63})"
                  r"|\bin\s+(?:the|my|our)\s+[\"'\u201c]?([A-Za-z0-9][\w-]{0,63})[\"'\u201d]?\s+(?:documents|docs|files)\b",
                  re.IGNORECASE)
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d]{2,80})[\"\u201d]")
_BETWEEN = re.compile(rf"\bbetween\s+({_YEAR})\s+and\s+({_YEAR})\b", re.IGNORECASE)
_SINCE = re.compile(rf"\b(?:since|after|from)\s+({_DAY}|{_YEAR})\b", re.IGNORECASE)
_BEFORE = re.compile(rf"\b(?:before|until|till)\s+({_DAY}|{_YEAR})\b", re.IGNORECASE)
_IN_YEAR = re.compile(rf"\b(?:in|during)\s+({_YEAR})\b(?!-)", re.IGNORECASE)


def _day(text: str, *, end: bool = False, exclusive: bool = False) -> date | None:
    try:
        if len(text) == 4:
            year = int(text)
            if exclusive:
                return date(year, 1, 1) - timedelta(days=1) if end else date(year + 1, 1, 1)
            return date(year, 12, 31) if end else date(year, 1, 1)
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day + timedelta(days=1 if not end else -1) if exclusive else day


def time_range(question: str) -> dict[str, str] | None:
    """Inclusive ISO dates from the question's explicit time cues, or None."""
    start = end = None
    if match := _BETWEEN.search(question):
        start, end = _day(match[1]), _day(match[2], end=True)
    else:
        if match := _SINCE.search(question):
            exclusive = match[0].lower().startswith("after")
            start = _day(match[1], exclusive=exclusive)
        if match := _BEFORE.search(question):
            end = _day(match[1], end=True, exclusive=match[0].lower().startswith("before"))
        if start is None and end is None and (match := _IN_YEAR.search(question)):
            start, end = _day(match[1]), _day(match[1], end=True)
    if start and end and start > end:
        return None
    out = {"from": start.isoformat()} if start else {}
    return {**out, "to": end.isoformat()} if end else (out or None)


def extract(question: str, categories: list[str]) -> dict[str, Any]:
    """Filters from the question and the plan's categories (only the fields that apply)."""
    found: dict[str, Any] = {}
    domains = list(dict.fromkeys(CATEGORY_DOMAINS[c] for c in categories if c in CATEGORY_DOMAINS))
    if domains:
        found["domain"] = domains[0] if len(domains) == 1 else domains
    document_set = None
    if match := _SET.search(question):
        document_set = (match[1] or match[2]).lower()
        found["document_set"] = document_set
    entities = [q.strip() for q in _QUOTED.findall(question) if q.strip().lower() != document_set]
    if entities:
        found["entity"] = entities[0] if len(entities) == 1 else entities[:4]
    if (span := time_range(question)) is not None:
        found["time_range"] = span
    return found


def add_metadata_filters(plan: Plan, request: ChatRequest, settings: PlannerSettings) -> Plan:
    """The plan with its metadata_filters filled in (fields the plan already has are kept)."""
    if plan.source == "preflight":
        return plan
    categories = [t.category for t in plan.tasks if t.kind == "expert"]
    merged = {**extract(plan.question, categories), **plan.metadata_filters}
    try:
        filters = parse_filters(merged).dump()
    except FilterError:  # an extracted value outside the vocabulary: keep only the plan's own filters
        filters = plan.metadata_filters
    if filters == plan.metadata_filters:
        return plan
    return plan.model_copy(update={"metadata_filters": filters})
