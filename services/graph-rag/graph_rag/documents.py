"""Tenant documents for a question (on by default): the chunks of the tenant's (and the shared) documents
nearest to the question, plus those that mention the matched names or unknown terms, within the plan's
metadata_filters (moe_core.knowledge.memory: domain, entity, document set, time range). The gateway's
POST /v1/memory/documents writes them; the vectors are the fleet's packaged MiniLM embeddings (the
question's usually shared by the planner: moe_core.knowledge.question_vectors). A scope known to have no documents
is not looked up at all (graph_rag.doc_scope)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from moe_core.knowledge.embeddings import MiniLMEmbedder, chroma_client
from moe_core.knowledge.memory import MemoryFilters, open_collection
from moe_core.knowledge.memory.store import lookup


class DocumentLookup:
    """embedder None: keyword lookup only (a collection whose vectors are not the fleet's)."""

    def __init__(self, url: str, collection: str, tenant_key: str = "tenant_id", limit: int = 3,
                 embedder: MiniLMEmbedder | None = None, max_distance: float = 0.75) -> None:
        self.url = url
        self.collection_name = collection
        self.tenant_key = tenant_key
        self.limit = limit
        self.embedder = embedder
        self.max_distance = max_distance
        self._client: Any = None
        self._collection: Any = None

    async def collection(self) -> Any:
        if self._collection is None:
            if self._client is None:
                self._client = await chroma_client(self.url)
            self._collection = await open_collection(self._client, self.collection_name)
        return self._collection

    async def lookup(self, question: str, terms: list[str], filters: MemoryFilters, tenant: str,
                     vector: list[float] | None = None) -> list[dict[str, Any]]:
        """`vector`: the question's, if already known (the planner's); else the question is embedded here."""
        if self.embedder is None:
            vector = None  # the collection's vectors are not the fleet's
        elif vector is None and question.strip():
            vector = (await asyncio.to_thread(self.embedder.embed, [question]))[0].tolist()
        if vector is None and not terms:
            return []
        async with self._open() as collection:
            return await lookup(collection, tenant=tenant, filters=filters, vector=vector, terms=terms,
                                limit=self.limit, max_distance=self.max_distance, tenant_key=self.tenant_key)

    async def any_of(self, tenants: list[str]) -> bool:
        """Whether the collection holds any chunk of these tenants (one Chroma call, no vectors read)."""
        where = {self.tenant_key: {"$in": tenants}} if self.tenant_key else None
        async with self._open() as collection:
            found = await collection.get(where=where, limit=1, include=[])
        return bool(found["ids"])

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Any]:
        try:
            yield await self.collection()
        except Exception:
            self._collection = None  # deleted or re-created elsewhere: open it again next time
            raise

    async def ready(self) -> None:
        await self.collection()
