"""The planner's Chroma connection: one lazily opened async client, collections by name, embeddings off-loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis

import moe_core.knowledge.question_vectors as question_vectors
from moe_core.knowledge.embeddings import CACHE_SIZE, chroma_client, get_embedder
from moe_core.runtime import redis_batch
from moe_core.runtime.observability import ledger
from planner.cache_text import normalise

log = logging.getLogger(__name__)


class Vectors:
    def __init__(self, url: str, cache_size: int = CACHE_SIZE) -> None:
        self.url = url
        self.embedder = get_embedder(cache_size=cache_size)
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await chroma_client(self.url)
        return self._client

    async def collection(self, name: str, metadata: dict[str, Any] | None = None) -> Any:
        """Get or create a cosine-space collection (cached per process)."""
        if name not in self._collections:
            client = await self.client()
            self._collections[name] = await client.get_or_create_collection(
                name, embedding_function=self.embedder, configuration={"hnsw": {"space": "cosine"}},
                metadata=metadata)
        return self._collections[name]

    async def drop(self, name: str) -> None:
        self._collections.pop(name, None)
        client = await self.client()
        try:
            await client.delete_collection(name)
        except Exception as exc:  # already gone
            log.debug("delete_collection %s: %s", name, exc)

    def forget(self, name: str) -> None:
        """Drop a cached handle (e.g. after the collection was deleted elsewhere)."""
        self._collections.pop(name, None)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = await ledger.to_thread(self.embedder.embed, texts)  # its CPU on the run's ledger
        return [[float(x) for x in v] for v in vectors]

    async def embed_array(self, texts: list[str]) -> Any:
        """Unit vectors as one float32 array (len(texts), dim), off the event loop."""
        return await ledger.to_thread(self.embedder.embed, texts)  # its CPU on the run's ledger

    def embedded(self, question: str) -> tuple[str, Any]:
        """(the text the planner embeds for `question`, its vector if this process embedded it recently or None)."""
        text = normalise(question)
        return text, self.embedder.cached(text)

    async def share(self, redis: Redis, namespace: str, question: str) -> bool:
        """One SET of the question's vector for graph-rag (moe_core.knowledge.question_vectors), when it was embedded
        here
        (the router's) and no pipeline carries it (SemanticCache.remember does for a cacheable request)."""
        text, vector = self.embedded(question)
        if vector is None:
            return False
        await redis_batch.send(redis, lambda pipe: question_vectors.share(pipe, namespace, text, vector))
        return True

    async def heartbeat(self) -> None:
        client = await self.client()
        await client.heartbeat()

    async def warm(self) -> None:
        """Load the model before the first request needs it."""
        await self.embed(["warm up"])


def collection_name(prefix: str, namespace: str) -> str:
    """Chroma names: 3-512 of [a-zA-Z0-9._-], starting and ending with a letter or digit."""
    name = f"{prefix}-{namespace}".strip("._-")
    return name if name[-1].isalnum() else f"{name}0"
