"""Semantic router: prototype questions per expert category in Chroma; a clear match skips the planner model.

Clear = the nearest prototype is within `router_threshold` (cosine distance) and the nearest prototype of
any other category is at least `router_margin` farther. The prototypes live in one collection named after
their content hash (the same data for every namespace, re-seeded only when the prototypes change).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from moe_core.embeddings import MODEL_ID
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
        collection = await self.vectors.collection(self.name)
        [vector] = await self.vectors.embed([normalise(question)])
        found = await collection.query(query_embeddings=[vector], n_results=NEIGHBOURS,
                                       include=["distances", "metadatas"])
        neighbours = [(str((meta or {}).get("category", "general")), float(dist))
                      for meta, dist in zip(found["metadatas"][0], found["distances"][0], strict=True)]
        return decide(neighbours, self.threshold, self.margin)
