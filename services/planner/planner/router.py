"""Semantic router: prototype questions per expert category in Chroma; a clear match skips the planner model.

Clear = the nearest prototype is within `router_threshold` (cosine distance) and the nearest prototype of
any other category is at least `router_margin` farther. The prototypes live in one collection named after
their content hash (the same data for every namespace, re-seeded only when the prototypes change). Each
planner reads the prototype vectors from that collection once and compares questions with them in memory
(96 dot products): no Chroma round trip per request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from moe_core.knowledge.embeddings import MODEL_ID
from planner.cache_text import normalise
from planner.router_prototypes import PROTOTYPES
from planner.vectors import Vectors

NEIGHBOURS = 24


@dataclass(frozen=True)
class Route:
    category: str
    distance: float
    margin: float
    clear: bool


def prototypes_version(prototypes: dict[str, list[str]] = PROTOTYPES) -> str:
    raw = json.dumps({"model": MODEL_ID, "prototypes": prototypes}, sort_keys=True)
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
    return Route(category, distance, lead, clear=distance <= threshold and lead >= margin)


class SemanticRouter:
    def __init__(self, vectors: Vectors, threshold: float, margin: float,
                 prototypes: dict[str, list[str]] = PROTOTYPES) -> None:
        self.vectors = vectors
        self.threshold = threshold
        self.margin = margin
        self.prototypes = prototypes
        self.name = f"moe-router-{prototypes_version(prototypes)}"
        self._seeded = False
        self._matrix: Any = None  # prototype vectors (rows), read from the collection once
        self._labels: list[str] = []

    async def seed(self) -> None:
        """Idempotent: upserts the prototypes unless the collection already holds all of them."""
        collection = await self.vectors.collection(self.name)
        ids, texts, metadatas = [], [], []
        for category, questions in sorted(self.prototypes.items()):
            for i, question in enumerate(questions):
                ids.append(f"{category}:{i}")
                texts.append(normalise(question))
                metadatas.append({"category": category, "question": question})
        if await collection.count() != len(ids):
            vectors = await self.vectors.embed(texts)
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
        [vector] = await self.vectors.embed([normalise(question)])
        query = np.asarray(vector, dtype=np.float32)
        distances = 1.0 - self._matrix @ (query / max(float(np.linalg.norm(query)), 1e-12))  # cosine, as in Chroma
        nearest = np.argsort(distances)[:NEIGHBOURS]
        return decide([(self._labels[i], float(distances[i])) for i in nearest], self.threshold, self.margin)
