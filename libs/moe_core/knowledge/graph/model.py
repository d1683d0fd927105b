"""Typed values the graph code passes around: a triple to write and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator, model_validator

from moe_core.knowledge.graph.names import MAX_NAME_CHARS, clean_name, normalize
from moe_core.knowledge.graph.vocab import RELATION_SET, Source


class Triple(BaseModel):
    """subject -relation-> object, with the closed vocabulary enforced."""

    subject: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    relation: str
    object: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    confidence: float = Field(default=0.7, ge=0, le=1)

    @field_validator("subject", "object")
    @classmethod
    def _clean(cls, value: str) -> str:
        value = clean_name(value)
        if not normalize(value):
            raise ValueError("a name needs at least one letter or digit")
        return value

    @field_validator("relation")
    @classmethod
    def _known(cls, value: str) -> str:
        value = value.strip().upper().replace(" ", "_")
        if value not in RELATION_SET:
            raise ValueError(f"relation {value!r} is not in the vocabulary")
        return value

    @model_validator(mode="after")
    def _no_loop(self) -> Triple:
        if normalize(self.subject) == normalize(self.object):
            raise ValueError("subject and object are the same")
        return self

    def title(self) -> str:
        return f"{self.subject} {self.relation} {self.object}"


@dataclass(frozen=True)
class Provenance:
    """Who writes: tenant, source (ontology | extracted | gap_healer), domain and the causing message."""

    tenant: str
    source: Source
    domain: str = "general"
    origin: str = ""  # response_id of the answer, gap or quarantine decision that caused the write
    expert: str | None = None
    model: str | None = None
    entity_type: str = "Concept"
    import_id: str | None = None  # the knowledge import (change set id) that writes: kept in the relation's `imports`
    document: str | None = None  # its source document, `<document id>@sha256:<hex>`: kept in `documents`
    # what a machine writer learned the relation from (graph-ingest: `answer:<id>` or `memory:<id>`): kept in the
    # relation's `learned_from`, the last MAX_ASSERTED_BY (codex-lineage's fact lineage follows it)
    learned_from: str | None = None
