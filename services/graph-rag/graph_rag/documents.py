"""Optional Chroma lookup: documents that mention the question's terms, filtered by the plan's
metadata_filters and the tenant. Keyword search (`where_document $contains`), so no embedding model
is needed at run time."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

import chromadb

from moe_core.graph.vocab import SHARED_TENANT

log = logging.getLogger(__name__)
MAX_TERMS = 8


def where_clause(filters: dict[str, Any], tenant_key: str, tenant: str) -> dict[str, Any] | None:
    """Chroma `where`: every plan filter, plus the tenant's own and shared documents."""
    parts = [{k: v} for k, v in sorted(filters.items())]
    if tenant_key:
        parts.append({tenant_key: {"$in": [tenant, SHARED_TENANT]}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def document_clause(terms: list[str]) -> dict[str, Any] | None:
    variants = list(dict.fromkeys(v for t in terms for v in (t, t.lower(), t.capitalize()) if v.strip()))[:MAX_TERMS]
    if not variants:
        return None
    clauses: list[dict[str, Any]] = [{"$contains": v} for v in variants]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


class DocumentLookup:
    def __init__(self, url: str, collection: str, tenant_key: str = "tenant_id", limit: int = 3) -> None:
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 8000
        self.ssl = parsed.scheme == "https"
        self.collection_name = collection
        self.tenant_key = tenant_key
        self.limit = limit
        self._client: Any = None

    async def _collection(self) -> Any:
        if self._client is None:
            self._client = await chromadb.AsyncHttpClient(host=self.host, port=self.port, ssl=self.ssl)
        return await self._client.get_collection(self.collection_name, embedding_function=None)

    async def lookup(self, terms: list[str], filters: dict[str, Any], tenant: str) -> list[dict[str, Any]]:
        contains = document_clause(terms)
        if contains is None:
            return []
        collection = await self._collection()
        got = await collection.get(where=where_clause(filters, self.tenant_key, tenant), where_document=contains,
                                   limit=self.limit, include=["documents", "metadatas"])
        docs = []
        for doc_id, text, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=False):
            docs.append({"ref": f"{self.collection_name}/{doc_id}", "text": text or "", "metadata": dict(meta or {})})
        return docs

    async def ready(self) -> None:
        await self._collection()
