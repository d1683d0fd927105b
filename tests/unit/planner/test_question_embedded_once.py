"""A question is embedded once by the planner (issue 52): the semantic cache's lookup, the router and the store of
its answer ask the static embedder for the same normalised text (moe_core.knowledge.static_embedding.StaticEmbedder
.one), which computes it once and hands the same read-only vector to each."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from moe_core.knowledge.static_embedding import ONE_KEPT, StaticEmbedder
from planner.cache_text import normalise
from planner.router import SemanticRouter
from planner.semantic_cache import SemanticCache

pytestmark = pytest.mark.unit
QUESTION = "Translate 'room number 117' into German."


def counted() -> tuple[StaticEmbedder, list[list[str]]]:
    embedder, asked = StaticEmbedder(), []
    embed = embedder.embed

    def counting(texts: list[str]) -> Any:
        asked.append(list(texts))
        return embed(texts)
    embedder.embed = counting  # type: ignore[method-assign]
    return embedder, asked


async def test_the_lookup_the_router_and_the_store_embed_a_question_once() -> None:
    embedder, asked = counted()
    cache: Any = SimpleNamespace(static=embedder)
    looked_up = await SemanticCache.embed(cache, normalise(QUESTION))  # the lookup
    router = SemanticRouter(None, threshold=0.33, margin=0.07, embedder=embedder)  # type: ignore[arg-type]
    router._seeded, router._labels = True, ["translation", "general"]
    router._matrix = np.stack([looked_up, -looked_up])
    route = await router.route(QUESTION)
    stored = await SemanticCache.embed(cache, normalise(QUESTION))  # the answer's store
    assert asked == [[normalise(QUESTION)]]
    assert route is not None and route.category == "translation" and route.distance < 1e-5
    assert stored is looked_up and not stored.flags.writeable  # shared: nobody may change it in place


def test_a_remembered_vector_is_the_embedding_of_its_text_and_the_memory_is_bounded() -> None:
    embedder, asked = counted()
    assert np.array_equal(embedder.one("how do i boil an egg"), StaticEmbedder().embed(["how do i boil an egg"])[0])
    for i in range(ONE_KEPT + 1):
        embedder.one(f"question {i}")
    assert embedder.one.cache_info().currsize == ONE_KEPT
    embedder.one("question 0")  # the oldest was let go: computed again
    assert asked.count(["question 0"]) == 2
