"""The Chroma collection of tenant documents (one per topic namespace unless configured) and the
filtered lookup: nearest chunks by embedding, plus chunks that literally mention the asked-about terms,
both within the tenant and the filters."""

from __future__ import annotations

import asyncio
from typing import Any

from moe_core.knowledge.memory.filters import MemoryFilters, where, where_document

PREFIX = "moe-memory"
INCLUDE = ["documents", "metadatas", "distances"]


def collection_name(namespace: str, override: str = "") -> str:
    """Chroma names: 3-512 of [a-zA-Z0-9._-], starting and ending with a letter or digit."""
    if override:
        return override
    name = f"{PREFIX}-{namespace}".strip("._-")
    return name if name[-1].isalnum() else f"{name}0"


async def open_collection(client: Any, name: str) -> Any:
    """Get or create the cosine-space collection; vectors are always passed in (no embedding function)."""
    return await client.get_or_create_collection(name, embedding_function=None,
                                                 configuration={"hnsw": {"space": "cosine"}})


def version_key(namespace: str, tenant: str) -> str:
    """Redis counter of a tenant's documents, bumped by every upload and deletion: graph-rag's context cache
    key includes it, so a deleted document is never served from the cache."""
    return f"memory:version:{namespace}:{tenant}"


def presence_key(namespace: str, tenant: str) -> str:
    """Redis marker of whether the tenant (with the shared scope) has documents, stamped with the documents
    versions it was found at (graph-rag: no Chroma call for a scope without documents)."""
    return f"memory:presence:{namespace}:{tenant}"


def chunk_ref(collection: str, chunk_id: str) -> str:
    return f"{collection}/{chunk_id}"


def hit(collection: str, chunk_id: str, text: str | None, meta: Any, distance: float | None) -> dict[str, Any]:
    """One retrieved chunk with where it came from (document, title, source)."""
    metadata = dict(meta or {})
    return {"ref": chunk_ref(collection, chunk_id), "text": text or "", "metadata": metadata,
            "distance": None if distance is None else round(float(distance), 4),
            "document_id": metadata.get("document_id"), "title": metadata.get("title"),
            "source": metadata.get("source")}


async def lookup(collection: Any, *, tenant: str | None, filters: MemoryFilters, vector: list[float] | None,
                 terms: list[str] | None, limit: int, max_distance: float,
                 tenant_key: str = "tenant_id") -> list[dict[str, Any]]:
    """Up to `limit` chunks: the nearest to `vector` (cosine distance <= max_distance) first, then those
    mentioning one of `terms`; never outside the tenant (and the shared documents) and the filters."""
    scope = where(filters, tenant, tenant_key)
    mentions = where_document(filters)
    name = collection.name
    found: dict[str, dict[str, Any]] = {}
    semantic = keyword = None
    if vector is not None:
        semantic = collection.query(query_embeddings=[vector], n_results=limit, where=scope,
                                    where_document=mentions, include=INCLUDE)
    with_terms = where_document(filters, terms) if terms else None
    if with_terms is not None:
        keyword = collection.get(where=scope, where_document=with_terms, limit=limit,
                                 include=["documents", "metadatas"])
    near, named = await asyncio.gather(_maybe(semantic), _maybe(keyword))
    if near:
        rows = zip(near["ids"][0], near["documents"][0], near["metadatas"][0], near["distances"][0], strict=False)
        for chunk_id, text, meta, distance in rows:
            if distance is not None and distance <= max_distance:
                found[chunk_id] = hit(name, chunk_id, text, meta, distance)
    if named:
        for chunk_id, text, meta in zip(named["ids"], named["documents"] or [], named["metadatas"] or [],
                                        strict=False):
            found.setdefault(chunk_id, hit(name, chunk_id, text, meta, None))
    return list(found.values())[:limit]


async def _maybe(call: Any) -> Any:
    return await call if call is not None else None
