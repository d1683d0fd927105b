"""The fleet's own OpenLineage run facets (built as JSON by codex_lineage.lineage). Each names its JSON Schema in
`_schemaURL`; codex-lineage serves those schemas at /api/v1/facets/<Name>.json (FACET_FIELDS below)."""

from __future__ import annotations

from typing import Any

SCHEMA_BASE = ["http://127.0.0.1:8109/api/v1/facets"]  # from settings (MOE_LINEAGE_FACET_BASE)


def schema_url(name: str) -> str:
    return f"{SCHEMA_BASE[0].rstrip('/')}/{name}.json#/$defs/{name}"


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
