"""Knowledge bundles: a tenant's subgraph (by domain or entity set) as a versioned JSON document with a
SHA-256 digest over its canonical form. The format is documented in docs/knowledge-bundles.md; its JSON
Schema (docs/knowledge-bundle.schema.json) is generated from `Bundle`."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from moe_core.knowledge.graph.model import Triple
from moe_core.knowledge.graph.names import MAX_NAME_CHARS, clean_name, normalize

FORMAT = "moe-knowledge-bundle"
VERSION = 1
DOMAIN_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class BundleEntity(BaseModel):
    """An entity: its display name (the key is derived from it), type, domain and aliases."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    type: str = Field(default="Concept", min_length=1, max_length=64)
    domain: str = Field(default="general", pattern=DOMAIN_PATTERN)
    aliases: list[str] = Field(default_factory=list, max_length=500)

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not normalize(value):
            raise ValueError("a name needs at least one letter or digit")
        return clean_name(value)


class BundleRelation(Triple):
    """subject -relation-> object (the closed vocabulary), with the domain and source it had when exported."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(default="general", pattern=DOMAIN_PATTERN)
    source: str = Field(default="extracted", max_length=32, description="Source at the exporting side")
    verified: bool = Field(default=False, description="Verified at the exporting side (informational only)")


class Selection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str | None = Field(default=None, pattern=DOMAIN_PATTERN)
    entities: list[str] | None = Field(default=None, max_length=1000)


class Origin(BaseModel):
    """Where and when the bundle was exported; graph_version is the tenant's graph version at that time."""

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=200)
    exported_at: datetime
    exported_by: str = Field(max_length=200)
    graph_version: int = Field(ge=0)
    selection: Selection


class Bundle(BaseModel):
    """A knowledge bundle. `digest` is "sha256:" + hex SHA-256 of the canonical JSON of every other field."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["moe-knowledge-bundle"]
    version: Literal[1]
    origin: Origin
    entities: list[BundleEntity]
    relations: list[BundleRelation]
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _consistent(self) -> Bundle:
        keys = [normalize(e.name) for e in self.entities]
        if len(set(keys)) != len(keys):
            raise ValueError("two entities have the same name")
        known = set(keys)
        for n, rel in enumerate(self.relations):
            missing = [name for name in (rel.subject, rel.object) if normalize(name) not in known]
            if missing:
                raise ValueError(f"relation {n} ({rel.title()}) names an entity not in entities: {missing[0]!r}")
        return self

    def domains(self) -> list[str]:
        return sorted({r.domain for r in self.relations} | {e.domain for e in self.entities})


def canonical(document: dict[str, Any]) -> bytes:
    """The canonical form the digest covers: every field but `digest`, keys sorted, no whitespace, UTF-8."""
    body = {k: v for k, v in document.items() if k != "digest"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(document: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(document)).hexdigest()


class BundleError(ValueError):
    """A bundle that is not valid (shape, vocabulary, consistency or digest)."""


def seal(origin: Origin, entities: list[BundleEntity], relations: list[BundleRelation]) -> dict[str, Any]:
    """A bundle document with its digest, as JSON-ready data."""
    body = {"format": FORMAT, "version": VERSION, "origin": origin.model_dump(mode="json"),
            "entities": [e.model_dump(mode="json") for e in entities],
            "relations": [r.model_dump(mode="json") for r in relations]}
    return {**body, "digest": digest_of(body)}


def verify(document: Any) -> Bundle:
    """Parse a received bundle: the digest must match the document exactly as received."""
    if not isinstance(document, dict):
        raise BundleError("a bundle is a JSON object")
    if document.get("format") != FORMAT:
        raise BundleError(f"format must be {FORMAT!r}")
    if document.get("version") != VERSION:
        raise BundleError(f"unsupported bundle version {document.get('version')!r} (this fleet reads {VERSION})")
    try:
        bundle = Bundle.model_validate(document)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "bundle"
            raise BundleError(f"{where}: {first['msg']}") from None
        raise BundleError(str(exc)) from None
    actual = digest_of(document)
    if actual != bundle.digest:
        raise BundleError(f"digest mismatch: the bundle says {bundle.digest}, its content hashes to {actual}")
    return bundle


def json_schema() -> dict[str, Any]:
    schema = Bundle.model_json_schema()
    schema["$id"] = "moe-sovereign-fleet/KnowledgeBundle.schema.json"
    return schema
