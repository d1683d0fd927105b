"""The fleet's own OpenLineage run facets. Each names its JSON Schema in `_schemaURL`; codex-lineage serves
those schemas at /api/v1/facets/<Name>.json (FACET_SCHEMAS below)."""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.generated.base import InputDatasetFacet, RunFacet

SCHEMA_BASE = ["http://127.0.0.1:8109/api/v1/facets"]  # from settings (MOE_LINEAGE_FACET_BASE)


def schema_url(name: str) -> str:
    return f"{SCHEMA_BASE[0].rstrip('/')}/{name}.json#/$defs/{name}"


@attr.define
class MoeModelRunFacet(RunFacet):
    """Which model on which inference server did the work."""

    model: str | None = attr.field(default=None)
    server: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeModelRunFacet")


@attr.define
class MoeTokensRunFacet(RunFacet):
    promptTokens: int = attr.field(default=0)
    completionTokens: int = attr.field(default=0)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeTokensRunFacet")


@attr.define
class MoeTenantRunFacet(RunFacet):
    tenantId: str = attr.field(default="")
    responseId: str = attr.field(default="")
    replayOf: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeTenantRunFacet")


@attr.define
class MoeOutcomeRunFacet(RunFacet):
    """Confidence, category, tool and cache hit of a stage run (what an auditor asks about)."""

    confidence: str | None = attr.field(default=None)
    category: str | None = attr.field(default=None)
    tool: str | None = attr.field(default=None)
    cacheHit: bool | None = attr.field(default=None)
    detail: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeOutcomeRunFacet")


@attr.define
class MoeErrorRunFacet(RunFacet):
    message: str = attr.field(default="")
    errorType: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeErrorRunFacet")


@attr.define
class MoeVersionsRunFacet(RunFacet):
    """What the stage run ran with (Envelope.versions): its service, the digest of its configuration and of every
    prompt template it sent a model (name -> sha256:<hex>)."""

    service: str = attr.field(default="")
    configDigest: str = attr.field(default="")
    promptDigests: dict[str, str] = attr.field(factory=dict)
    policyDigests: dict[str, str] = attr.field(factory=dict)  # decision path -> version of the policies asked

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeVersionsRunFacet")


@attr.define
class MoeGraphFactsInputDatasetFacet(InputDatasetFacet):
    """Which knowledge-graph facts (relation ids) and documents a graph task's result was built from."""

    factIds: list[str] = attr.field(factory=list)
    documents: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeGraphFactsInputDatasetFacet")


@attr.define
class MoeCacheEntryInputDatasetFacet(InputDatasetFacet):
    """The semantic-cache entry that answered the request."""

    cacheKey: str = attr.field(default="")

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeCacheEntryInputDatasetFacet")


def _schema(name: str, props: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_url(name).split("#")[0],
            "$defs": {name: {"allOf": [
                {"$ref": f"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/{_base(name)}"},
                {"type": "object", "properties": props}]}},
            "type": "object", "properties": {FACET_KEYS[name]: {"$ref": f"#/$defs/{name}"}}}


def _base(name: str) -> str:
    return "InputDatasetFacet" if name.endswith("InputDatasetFacet") else "RunFacet"


_S, _I, _B = {"type": ["string", "null"]}, {"type": "integer", "minimum": 0}, {"type": ["boolean", "null"]}
FACET_FIELDS: dict[str, dict[str, Any]] = {
    "MoeModelRunFacet": {"model": _S, "server": _S},
    "MoeTokensRunFacet": {"promptTokens": _I, "completionTokens": _I},
    "MoeTenantRunFacet": {"tenantId": {"type": "string"}, "responseId": {"type": "string"}, "replayOf": _S},
    "MoeOutcomeRunFacet": {"confidence": _S, "category": _S, "tool": _S, "cacheHit": _B, "detail": _S},
    "MoeErrorRunFacet": {"message": {"type": "string"}, "errorType": _S},
    "MoeVersionsRunFacet": {"service": {"type": "string"},
                            "configDigest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                            "promptDigests": {"type": "object", "additionalProperties": {
                                "type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}},
                            "policyDigests": {"type": "object", "additionalProperties": {
                                "type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}}},
    "MoeGraphFactsInputDatasetFacet": {"factIds": {"type": "array", "items": {"type": "string"}},
                                       "documents": {"type": "array", "items": {"type": "string"}}},
    "MoeCacheEntryInputDatasetFacet": {"cacheKey": {"type": "string"}},
}


FACET_KEYS = {"MoeModelRunFacet": "moe_model", "MoeTokensRunFacet": "moe_tokens", "MoeTenantRunFacet": "moe_tenant",
              "MoeOutcomeRunFacet": "moe_outcome", "MoeErrorRunFacet": "moe_error",
              "MoeVersionsRunFacet": "moe_versions", "MoeGraphFactsInputDatasetFacet": "moe_graph_facts",
              "MoeCacheEntryInputDatasetFacet": "moe_cache_entry"}


def facet_schema(name: str) -> dict[str, Any] | None:
    fields = FACET_FIELDS.get(name)
    return _schema(name, fields) if fields is not None else None
