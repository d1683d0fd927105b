"""Tenant documents in Chroma: one record per chunk (its vector from the fleet's packaged MiniLM model)
with the document's metadata, so graph-rag can scope a lookup by tenant, domain, document set and date.
The first chunk of a document (chunk 0) also stands for the document in lists.

A document held for review (a protected domain: policy/opa/memory.rego) is kept in a collection of its own
(`<collection>-held`), which neither graph-rag nor POST /v1/memory/search reads: it cannot reach an answer by a
missed filter. Its review (approvals so far, how many it needs) is in its chunk 0's metadata; once approved, its
chunks move to the searched collection with the review that released them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moe_core.knowledge.embeddings import MiniLMEmbedder, chroma_client
from moe_core.knowledge.memory import MemoryFilters, open_collection, where
from moe_core.knowledge.memory.filters import DOC_TIME_KEY, TENANT_KEY
from moe_core.knowledge.memory.store import lookup

EMBED_BATCH = 32
WRITE_BATCH = 256
DOC_FIELDS = ("title", "source", "domain", "document_set", "media_type", "chars", "chunks", "sha256", "uploaded_by")
HELD_SUFFIX = "-held"
PENDING, SEARCHABLE = "pending_review", "searchable"


def new_document_id() -> str:
    return f"doc-{uuid.uuid4().hex}"


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
    id: str = field(default_factory=new_document_id)


@dataclass
class Review:
    """A held document's review: the protected domains that hold it, the approvals it needs and has."""

    domains: list[str]
    required: int
    approvals: list[dict[str, Any]] = field(default_factory=list)  # {principal, key_id, at, note}

    def metadata(self, status: str) -> dict[str, Any]:
        return {"review_status": status, "review_domains": ",".join(self.domains),
                "approvals_required": self.required, "approvals": json.dumps(self.approvals)}

    @property
    def approvers(self) -> list[str]:
        return sorted({str(a["principal"]) for a in self.approvals})


def review_of(meta: dict[str, Any]) -> Review | None:
    """The review kept in a chunk's metadata (None: the document never needed one)."""
    if "review_status" not in meta:
        return None
    return Review([d for d in str(meta.get("review_domains") or "").split(",") if d],
                  int(meta.get("approvals_required") or 0), json.loads(str(meta.get("approvals") or "[]")))


def document_body(meta: dict[str, Any]) -> dict[str, Any]:
    """The API's view of a stored document (from its chunk 0's metadata)."""
    return {"object": "memory.document", "id": meta["document_id"], "tenant": meta[TENANT_KEY],
            **{k: meta.get(k) for k in DOC_FIELDS},
            "date": time.strftime("%Y-%m-%d", time.gmtime(int(meta.get(DOC_TIME_KEY, 0)))),
            "created_at": int(meta.get("created_at", 0)), **review_body(meta)}


def review_body(meta: dict[str, Any]) -> dict[str, Any]:
    """A document's review as the API shows it: pending_review (held, not searched) or searchable."""
    review = review_of(meta)
    if review is None:
        return {"status": SEARCHABLE, "review_domains": [], "approvals_required": 0, "approvals": []}
    status = PENDING if meta.get("review_status") == PENDING else SEARCHABLE
    return {"status": status, "review_domains": review.domains, "approvals_required": review.required,
            "approvals": review.approvals}


class MemoryStore:
    def __init__(self, url: str, collection: str, embedder: MiniLMEmbedder) -> None:
        self.url = url
        self.collection_name = collection
        self.held_name = f"{collection}{HELD_SUFFIX}"
        self.embedder = embedder
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def collection(self, held: bool = False) -> Any:
        """The searched collection, or (held) the one of documents held for review."""
        name = self.held_name if held else self.collection_name
        async with self._lock:
            if name not in self._collections:
                if self._client is None:
                    self._client = await chroma_client(self.url)
                self._collections[name] = await open_collection(self._client, name)
            return self._collections[name]

    async def both(self) -> list[Any]:
        return [await self.collection(), await self.collection(held=True)]

    def forget(self) -> None:
        """After a failure: open the collections again next time (they may have been deleted and re-created)."""
        self._collections = {}

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors = await asyncio.to_thread(self.embedder.embed, texts[start:start + EMBED_BATCH])
            out += [[float(x) for x in v] for v in vectors]
        return out

    async def count(self, tenant: str) -> int:
        """The tenant's documents, held ones included (they count against its limit)."""
        ids: set[str] = set()
        for collection in await self.both():
            ids |= set((await collection.get(where=_first_chunks(tenant), include=[]))["ids"])
        return len(ids)

    async def add(self, doc: NewDocument, review: Review | None = None) -> dict[str, Any]:
        """Store a document: searchable at once, or (with a review) held for it."""
        vectors = await self.embed(doc.chunks)
        now = int(time.time())
        base = {TENANT_KEY: doc.tenant, "document_id": doc.id, "title": doc.title, "source": doc.source,
                "domain": doc.domain, "document_set": doc.document_set, "media_type": doc.media_type,
                DOC_TIME_KEY: doc.doc_time, "created_at": now, "created_ns": time.time_ns(), "chars": doc.chars,
                "chunks": len(doc.chunks), "sha256": doc.sha256, "uploaded_by": doc.uploaded_by,
                **(review.metadata(PENDING) if review else {})}
        ids = [f"{doc.id}:{i}" for i in range(len(doc.chunks))]
        metas = [{**base, "chunk": i} for i in range(len(doc.chunks))]
        await _write(await self.collection(held=review is not None), ids, doc.chunks, vectors, metas)
        return document_body(metas[0])

    async def get(self, tenant: str, document_id: str) -> dict[str, Any] | None:
        meta = await self._first(tenant, document_id)
        return document_body(meta) if meta is not None else None

    async def _first(self, tenant: str, document_id: str, held: bool | None = None) -> dict[str, Any] | None:
        """Chunk 0's metadata: searched collection first (a document moved there is no longer held)."""
        scope = {"$and": [{TENANT_KEY: tenant}, {"document_id": document_id}, {"chunk": 0}]}
        for collection in await self.both() if held is None else [await self.collection(held)]:
            got = await collection.get(where=scope, include=["metadatas"])
            if got["ids"]:
                return dict(got["metadatas"][0])
        return None

    async def documents(self, tenant: str, filters: MemoryFilters, status: str | None = None) -> list[dict[str, Any]]:
        """The tenant's documents matching the filters (domain, document set, date; status: pending_review or
        searchable), newest first."""
        clause = where(filters.model_copy(update={"entity": []}), None)
        scope = {"$and": [*_first_chunks(tenant)["$and"], clause]} if clause else _first_chunks(tenant)
        found: dict[str, Any] = {}
        for collection in reversed(await self.both()):  # the searched copy wins over a held one left behind
            for meta in (await collection.get(where=scope, include=["metadatas"]))["metadatas"] or []:
                found[meta["document_id"]] = meta
        metas = sorted(found.values(), key=lambda m: (-_created_ns(m), m["document_id"]))
        docs = [document_body(m) for m in metas]
        return [d for d in docs if status is None or d["status"] == status]

    async def delete(self, tenant: str, document_id: str) -> bool:
        if await self.get(tenant, document_id) is None:
            return False
        for collection in await self.both():
            await collection.delete(where={"$and": [{TENANT_KEY: tenant}, {"document_id": document_id}]})
        return True

    async def held(self, tenant: str, document_id: str) -> tuple[dict[str, Any], Review] | None:
        """A held document's chunk 0 metadata and review (None: no such document pending review)."""
        meta = await self._first(tenant, document_id, held=True)
        review = review_of(meta) if meta is not None else None
        if meta is None or review is None or meta.get("review_status") != PENDING:
            return None
        return meta, review

    async def set_review(self, meta: dict[str, Any], review: Review) -> dict[str, Any]:
        """Record a held document's approvals so far (it stays held)."""
        updated = {**meta, **review.metadata(PENDING)}
        await (await self.collection(held=True)).update(ids=[f"{meta['document_id']}:0"], metadatas=[updated])
        return document_body(updated)

    async def release(self, tenant: str, document_id: str, review: Review) -> dict[str, Any]:
        """Move a held document into the searched collection with the review that released it, then drop the
        held copy (a copy left behind by a failure there is shadowed by the searched one and deleted with it)."""
        held = await self.collection(held=True)
        got = await held.get(where={"$and": [{TENANT_KEY: tenant}, {"document_id": document_id}]},
                             include=["documents", "metadatas", "embeddings"])
        order = sorted(range(len(got["ids"])), key=lambda i: int(got["metadatas"][i]["chunk"]))
        metas = [{**got["metadatas"][i], **review.metadata(SEARCHABLE)} for i in order]
        await _write(await self.collection(), [got["ids"][i] for i in order], [got["documents"][i] for i in order],
                     [[float(x) for x in got["embeddings"][i]] for i in order], metas)
        await held.delete(ids=list(got["ids"]))
        return document_body(metas[0])

    async def drop_held(self, tenant: str, document_id: str) -> None:
        """A rejected document: its text and vectors go (its record stays in the audit log)."""
        await (await self.collection(held=True)).delete(
            where={"$and": [{TENANT_KEY: tenant}, {"document_id": document_id}]})

    async def search(self, tenant: str, query: str, filters: MemoryFilters, limit: int,
                     max_distance: float) -> list[dict[str, Any]]:
        [vector] = await self.embed([query])
        return await lookup(await self.collection(), tenant=tenant, filters=filters, vector=vector, terms=None,
                            limit=limit, max_distance=max_distance)


async def _write(collection: Any, ids: list[str], texts: list[str], vectors: list[list[float]],
                 metas: list[dict[str, Any]]) -> None:
    """Add a document's chunks, chunk 0 last (a document is listed only once all its chunks are stored); a failure
    removes what was written."""
    try:
        order = [*range(1, len(ids)), 0]
        for start in range(0, len(order), WRITE_BATCH):
            part = order[start:start + WRITE_BATCH]
            await collection.add(ids=[ids[i] for i in part], documents=[texts[i] for i in part],
                                 embeddings=[vectors[i] for i in part], metadatas=[metas[i] for i in part])
    except BaseException:
        await collection.delete(ids=ids)
        raise


def _created_ns(meta: Any) -> int:
    """Upload time to the nanosecond (two uploads in one second keep their order); seconds before it was kept."""
    return int(meta.get("created_ns") or int(meta.get("created_at", 0)) * 1_000_000_000)


def _first_chunks(tenant: str) -> dict[str, Any]:
    return {"$and": [{TENANT_KEY: tenant}, {"chunk": 0}]}
