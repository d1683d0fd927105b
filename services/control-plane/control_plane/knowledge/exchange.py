"""Request bodies and response shapes of the knowledge-bundle API: a size-bounded body reader, the export
selection, the decision body and the public view of a change set."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from moe_core.knowledge.graph.bundles import DOMAIN_PATTERN, Bundle, BundleError, verify
from moe_core.runtime.openai_error import OpenAIError


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(default=None, description="One of the key's tenants (default: its first)")
    domain: str | None = Field(default=None, pattern=DOMAIN_PATTERN)
    entities: list[str] | None = Field(default=None, min_length=1, max_length=1000)


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


def too_large(message: str) -> OpenAIError:
    return OpenAIError(413, message, code="bundle_too_large")


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it (or its declared length) passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"the bundle is {declared} bytes; the policy allows at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"the bundle is larger than the {limit} bytes the policy allows")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_bundle(raw: bytes, max_entities: int, max_relations: int) -> tuple[dict[str, Any], Bundle]:
    """The document as received and its verified bundle; else 400 (not JSON, not a bundle, digest mismatch,
    nothing in it) or 413 (more items than the policy allows)."""
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OpenAIError(400, "the bundle is not valid JSON", code="invalid_bundle") from None
    if isinstance(document, dict):
        for name, most in (("entities", max_entities), ("relations", max_relations)):
            items = document.get(name)
            if isinstance(items, list) and len(items) > most:
                raise too_large(f"the bundle has {len(items)} {name}; the policy allows at most {most}")
    try:
        bundle = verify(document)
    except BundleError as exc:
        raise OpenAIError(400, f"invalid bundle: {exc}", code="invalid_bundle") from None
    if not bundle.entities and not bundle.relations:  # an export whose selection matched nothing
        raise OpenAIError(400, "invalid bundle: it holds no entities and no relations, nothing to import (did the "
                               "export's selection match anything?)", code="invalid_bundle")
    return document, bundle


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def view(cs: dict[str, Any]) -> dict[str, Any]:
    """A change set as the API shows it: the bundle's identity and size, the diff, approvals, decision."""
    bundle = cs["bundle"]
    return {
        "object": "knowledge.change_set", "id": cs["id"], "tenant": cs["tenant"], "status": cs["status"],
        "importer": f"key:{cs['importer_key']}", "importer_principal": cs["importer_principal"],
        "bundle": {"digest": bundle["digest"], "format": bundle["format"], "version": bundle["version"],
                   "origin": bundle["origin"], "entities": len(bundle["entities"]),
                   "relations": len(bundle["relations"])},
        "domains": cs["domains"], "approvals_required": cs["approvals_required"], "approvals": cs["approvals"],
        "diff": cs["diff"], "policy_digest": cs["policy_digest"], "created_at": _iso(cs["created_at"]),
        "decided_at": _iso(cs["decided_at"]), "decided_by": cs["decided_by"], "note": cs["note"],
        "result": cs["result"], "source_document": cs.get("source_document"),
    }
