"""Semantic router: prototype questions per expert category in Chroma; a clear match skips the planner model.

Clear = the nearest prototype is within `router_threshold` (cosine distance) and the nearest prototype of
any other category is at least `router_margin` farther; a question nearest to the `MIXED` prototypes (several
parts or domains) is never clear. The prototypes live in one collection named after their content hash and the
embedding model's id (the same data for every namespace, re-seeded only when the prototypes or the model change,
so a vector of one model is never compared with another's). Each planner reads the prototype vectors from that
collection once and compares questions with them in memory: no Chroma round trip per request.

The embedder is the static one by default (MOE_ROUTER_EMBEDDING, moe_core.knowledge.static_embedding: a table
lookup, ~0.1 ms a question against MiniLM's 4-8 ms); its threshold and margin were chosen on one half of the
labelled set and held against the other (planner.router_eval, bench.router_static).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from moe_core.knowledge.embeddings import MODEL_ID
from planner.cache_text import normalise
from planner.router_prototypes import MIXED, PROTOTYPES
from planner.vectors import Vectors

NEIGHBOURS = 24


@dataclass(frozen=True)
class Route:
    category: str
    distance: float
    margin: float
    clear: bool


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: list[str]) -> Any: ...


def prototypes_version(prototypes: dict[str, list[str]] = PROTOTYPES, model_id: str = MODEL_ID) -> str:
    raw = json.dumps({"model": model_id, "prototypes": prototypes}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def decide(neighbours: list[tuple[str, float]], threshold: float, margin: float) -> Route | None:
    """neighbours: (category, distance) of the nearest prototypes. Pure."""
    best: dict[str, float] = {}
    for category, distance in neighbours:
        best[category] = min(distance, best.get(category, distance))
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda item: item[1])
    category, distance = ranked[0]
    lead = (ranked[1][1] - distance) if len(ranked) > 1 else 2.0
    return Route(category, distance, lead, clear=is_clear(category, distance, lead, threshold, margin))


def is_clear(category: str, distance: float, lead: float, threshold: float, margin: float) -> bool:
    return distance <= threshold and lead >= margin and category != MIXED


class SemanticRouter:
    def __init__(self, vectors: Vectors, threshold: float, margin: float,
                 prototypes: dict[str, list[str]] = PROTOTYPES, embedder: Embedder | None = None) -> None:
        """`embedder`: the static one in the planner (app.py); None, the planner's MiniLM (`vectors`)."""
        self.vectors = vectors
        self.embedder = embedder
        self.threshold = threshold
        self.margin = margin
        self.prototypes = prototypes
        model_id = embedder.model_id if embedder is not None else MODEL_ID
        self.name = f"moe-router-{prototypes_version(prototypes, model_id)}"
        self._seeded = False
        self._matrix: Any = None  # prototype vectors (rows), read from the collection once
        self._labels: list[str] = []

    async def seed(self) -> None:
        """Idempotent: upserts the prototypes unless the collection already holds all of them."""
        if self.embedder is not None:  # its table loaded (built, the first time on a host) off the loop
            await asyncio.to_thread(self.embedder.embed, ["warm up"])
        collection = await self.vectors.collection(self.name)
        ids, texts, metadatas = [], [], []
        for category, questions in sorted(self.prototypes.items()):
            for i, question in enumerate(questions):
                ids.append(f"{category}:{i}")
                texts.append(normalise(question))
                metadatas.append({"category": category, "question": question})
        if await collection.count() != len(ids):
            vectors = [[float(x) for x in v] for v in await self._embed(texts)]
            await collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=metadatas)
        stored = await collection.get(ids=ids, include=["embeddings", "metadatas"])
        matrix = np.asarray(stored["embeddings"], dtype=np.float32)
        self._matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        self._labels = [str((meta or {}).get("category", "general")) for meta in stored["metadatas"]]
        self._seeded = True

    async def route(self, question: str) -> Route | None:
        try:
            return await self._route(question)
        except Exception:
            self._seeded = False  # re-created and re-seeded on the next question (e.g. after a Chroma reset)
            self.vectors.forget(self.name)
            raise

    async def _route(self, question: str) -> Route | None:
        if not self._seeded:
            await self.seed()
        text = normalise(question)
        one = getattr(self.embedder, "one", None)  # the static embedder's: the cache's lookup embedded it already
        vector = one(text) if one is not None else (await self._embed([text]))[0]
        query = np.asarray(vector, dtype=np.float32)
        distances = 1.0 - self._matrix @ (query / max(float(np.linalg.norm(query)), 1e-12))  # cosine, as in Chroma
        nearest = np.argsort(distances)[:NEIGHBOURS]
        return decide([(self._labels[i], float(distances[i])) for i in nearest], self.threshold, self.margin)

    async def _embed(self, texts: list[str]) -> Any:
        if self.embedder is None:
            return await self.vectors.embed_array(texts)  # MiniLM, off the loop
        return self.embedder.embed(texts)  # a table lookup: inline costs less than a thread hop
