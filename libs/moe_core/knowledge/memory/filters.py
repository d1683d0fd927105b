"""The vocabulary of `metadata_filters` (Plan, GraphTask, the memory API) and its translation into a
Chroma `where` / `where_document`. One model, so every producer and consumer agrees on the fields, and a
field that does not exist is an error, never silently ignored (an ignored filter widens the scope)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moe_core.knowledge.graph.vocab import SHARED_TENANT

DOMAIN_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_VALUES = 8
FILTER_FIELDS = ("domain", "entity", "document_set", "time_range")
# Metadata keys of a stored chunk (gateway writes them, graph-rag and the search read them).
TENANT_KEY = "tenant_id"
DOC_TIME_KEY = "doc_time"  # the document's date (given at upload, else the upload time), epoch seconds

# Expert category -> document domain: a question routed to a category is scoped to its domain's documents.
# Categories that say nothing about a subject (general, reasoning, translation, ...) scope nothing.
CATEGORY_DOMAINS: dict[str, str] = {
    "medical_consult": "medical", "legal_advisor": "legal", "technical_support": "technical",
    "code_reviewer": "technical", "math": "math", "science": "science", "data_analyst": "data",
}


class FilterError(ValueError):
    """Filters that do not fit the vocabulary; the message names the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TimeRange(BaseModel):
    """Inclusive dates (ISO `YYYY-MM-DD`); either end may be open."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start is None and self.end is None:
            raise ValueError("time_range needs 'from', 'to' or both")
        if self.start and self.end and self.start > self.end:
            raise ValueError("time_range 'from' is after 'to'")
        return self

    def bounds(self) -> tuple[int | None, int | None]:
        """Epoch seconds: from the start of `from` to the end of `to` (UTC)."""
        low = int(datetime.combine(self.start, time.min, UTC).timestamp()) if self.start else None
        high = int(datetime.combine(self.end, time.max, UTC).timestamp()) if self.end else None
        return low, high


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class MemoryFilters(BaseModel):
    """What scopes a memory lookup. Lists mean any of; every given field must hold."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    domain: list[str] = Field(default_factory=list, max_length=MAX_VALUES)
    entity: list[str] = Field(default_factory=list, max_length=MAX_VALUES, description="Text the chunk mentions")
    document_set: list[str] = Field(default_factory=list, max_length=MAX_VALUES)
    time_range: TimeRange | None = None

    _lists = field_validator("domain", "entity", "document_set", mode="before")(_as_list)

    @field_validator("domain", "document_set")
    @classmethod
    def _slugs(cls, values: list[str]) -> list[str]:
        import re

        for value in values:
            if not re.fullmatch(DOMAIN_PATTERN, value):
                raise ValueError(f"{value!r} is not a lower-case name (a-z, 0-9, '_', '-'; at most 64)")
        return list(dict.fromkeys(values))

    @field_validator("entity")
    @classmethod
    def _entities(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values]
        if any(not v or len(v) > 200 for v in cleaned):
            raise ValueError("an entity is 1 to 200 characters")
        return list(dict.fromkeys(cleaned))

    def dump(self) -> dict[str, Any]:
        """The wire form (Plan.metadata_filters): only the fields that are set."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)


def parse_filters(data: Mapping[str, Any] | None) -> MemoryFilters:
    """Validate filters from a plan or a client; FilterError names the first wrong field."""
    if not data:
        return MemoryFilters()
    if not isinstance(data, Mapping):
        raise FilterError("filters must be an object")
    unknown = sorted(k for k in data if k not in FILTER_FIELDS)
    if unknown:
        raise FilterError(f"unknown filter field {unknown[0]!r}; the fields are {', '.join(FILTER_FIELDS)}",
                          unknown[0])
    try:
        return MemoryFilters.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise FilterError(f"invalid filter {field}: {first['msg']}", field) from None


def where(filters: MemoryFilters, tenant: str | None, tenant_key: str = TENANT_KEY) -> dict[str, Any] | None:
    """Chroma `where`: every filter, and the tenant's own documents plus the shared ones."""
    parts: list[dict[str, Any]] = []
    if tenant is not None and tenant_key:
        parts.append({tenant_key: {"$in": [tenant, SHARED_TENANT]}})
    if filters.domain:
        parts.append({"domain": {"$in": filters.domain}})
    if filters.document_set:
        parts.append({"document_set": {"$in": filters.document_set}})
    if filters.time_range is not None:
        low, high = filters.time_range.bounds()
        if low is not None:
            parts.append({DOC_TIME_KEY: {"$gte": low}})
        if high is not None:
            parts.append({DOC_TIME_KEY: {"$lte": high}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def where_document(filters: MemoryFilters, terms: list[str] | None = None,
                   max_terms: int = 8) -> dict[str, Any] | None:
    """Chroma `where_document`: the chunk mentions one of the entities (case variants; Chroma's
    `$contains` is case-sensitive), and, with `terms`, one of them too."""
    clauses = [c for c in (_any_of(filters.entity, max_terms), _any_of(terms or [], max_terms)) if c]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _any_of(words: list[str], limit: int) -> dict[str, Any] | None:
    variants = list(dict.fromkeys(v for w in words for v in (w, w.lower(), w.capitalize()) if v.strip()))[:limit]
    if not variants:
        return None
    found: list[dict[str, Any]] = [{"$contains": v} for v in variants]
    return found[0] if len(found) == 1 else {"$or": found}
