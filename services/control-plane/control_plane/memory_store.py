"""Tenant documents in Chroma: one record per chunk (its vector from the fleet's packaged MiniLM model)
with the document's metadata, so graph-rag can scope a lookup by tenant, domain, document set and date.
The first chunk of a document (chunk 0) also stands for the document in lists."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moe_core.embeddings import MiniLMEmbedder, chroma_client
from moe_core.memory import MemoryFilters, open_collection, where
from moe_core.memory.filters import DOC_TIME_KEY, TENANT_KEY
from moe_core.memory.store import lookup

EMBED_BATCH = 32
WRITE_BATCH = 256
DOC_FIELDS = ("title", "source", "domain", "document_set", "media_type", "chars", "chunks", "sha256", "uploaded_by")


@dataclass
class NewDocument:
    tenant: str
    title: str
    source: str
    domain: str
    document_set: str
    media_type: str
    doc_time: int
    sha256: str
    chunks: list[str]
    chars: int
    uploaded_by: str = ""  # the principal who uploaded it (who, besides the tenant's admins, may delete it)
    id: str = field(default_factory=lambda: f"doc-{uuid.uuid4().hex}")


def document_body(meta: dict[str, Any]) -> dict[str, Any]:
    """The API's view of a stored document (from its chunk 0's metadata)."""
    return {"object": "memory.document", "id": meta["document_id"], "tenant": meta[TENANT_KEY],
            **{k: meta.get(k) for k in DOC_FIELDS},
            "date": time.strftime("%Y-%m-%d", time.gmtime(int(meta.get(DOC_TIME_KEY, 0)))),
            "created_at": int(meta.get("created_at", 0))}


class MemoryStore:
    def __init__(self, url: str, collection: str, embedder: MiniLMEmbedder) -> None:
        self.url = url
        self.collection_name = collection
        self.embedder = embedder
        self._client: Any = None
        self._collection: Any = None
        self._lock = asyncio.Lock()

    async def collection(self) -> Any:
        async with self._lock:
            if self._collection is None:
                if self._client is None:
                    self._client = await chroma_client(self.url)
                self._collection = await open_collection(self._client, self.collection_name)
            return self._collection

    def forget(self) -> None:
        """After a failure: open the collection again next time (it may have been deleted and re-created)."""
        self._collection = None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors = await asyncio.to_thread(self.embedder.embed, texts[start:start + EMBED_BATCH])
            out += [[float(x) for x in v] for v in vectors]
        return out

    async def count(self, tenant: str) -> int:
        got = await (await self.collection()).get(where=_first_chunks(tenant), include=[])
        return len(got["ids"])

    async def add(self, doc: NewDocument) -> dict[str, Any]:
        vectors = await self.embed(doc.chunks)
        now = int(time.time())
        base = {TENANT_KEY: doc.tenant, "document_id": doc.id, "title": doc.title, "source": doc.source,
                "domain": doc.domain, "document_set": doc.document_set, "media_type": doc.media_type,
                DOC_TIME_KEY: doc.doc_time, "created_at": now, "created_ns": time.time_ns(), "chars": doc.chars,
                "chunks": len(doc.chunks), "sha256": doc.sha256, "uploaded_by": doc.uploaded_by}
        ids = [f"{doc.id}:{i}" for i in range(len(doc.chunks))]
        metas = [{**base, "chunk": i} for i in range(len(doc.chunks))]
        collection = await self.collection()
        try:  # chunk 0 last: a document is listed only once all its chunks are stored
            order = [*range(1, len(ids)), 0]
            for start in range(0, len(order), WRITE_BATCH):
                part = order[start:start + WRITE_BATCH]
                await collection.add(ids=[ids[i] for i in part], documents=[doc.chunks[i] for i in part],
                                     embeddings=[vectors[i] for i in part], metadatas=[metas[i] for i in part])
        except BaseException:
            await collection.delete(where={"document_id": doc.id})
            raise
        return document_body(metas[0])

    async def get(self, tenant: str, document_id: str) -> dict[str, Any] | None:
        got = await (await self.collection()).get(
            where={"$and": [{TENANT_KEY: tenant}, {"document_id": document_id}, {"chunk": 0}]},
            include=["metadatas"])
        return document_body(got["metadatas"][0]) if got["ids"] else None

    async def documents(self, tenant: str, filters: MemoryFilters) -> list[dict[str, Any]]:
        """The tenant's documents matching the filters (domain, document set, date), newest first."""
        clause = where(filters.model_copy(update={"entity": []}), None)
        scope = {"$and": [*_first_chunks(tenant)["$and"], clause]} if clause else _first_chunks(tenant)
        got = await (await self.collection()).get(where=scope, include=["metadatas"])
        metas = sorted(got["metadatas"] or [], key=lambda m: (-_created_ns(m), m["document_id"]))
        return [document_body(m) for m in metas]

    async def delete(self, tenant: str, document_id: str) -> bool:
        if await self.get(tenant, document_id) is None:
            return False
        await (await self.collection()).delete(where={"$and": [{TENANT_KEY: tenant}, {"document_id": document_id}]})
        return True

    async def search(self, tenant: str, query: str, filters: MemoryFilters, limit: int,
                     max_distance: float) -> list[dict[str, Any]]:
        [vector] = await self.embed([query])
        return await lookup(await self.collection(), tenant=tenant, filters=filters, vector=vector, terms=None,
                            limit=limit, max_distance=max_distance)


def _created_ns(meta: Any) -> int:
    """Upload time to the nanosecond (two uploads in one second keep their order); seconds before it was kept."""
    return int(meta.get("created_ns") or int(meta.get("created_at", 0)) * 1_000_000_000)


def _first_chunks(tenant: str) -> dict[str, Any]:
    return {"$and": [{TENANT_KEY: tenant}, {"chunk": 0}]}
