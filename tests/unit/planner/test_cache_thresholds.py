"""The labelled near-miss set at the default thresholds (the numbers in docs/semantic-cache.md).

Real embeddings (the packaged MiniLM), the planner's own decision function; no Chroma needed here
(tests/infra/planner/test_semantic_cache.py runs the same lookups through the Chroma server).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from moe_core.knowledge.embeddings import cosine_distance, get_embedder
from planner.cache_text import normalise
from planner.semantic_cache import Candidate, decide
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit
DATA = Path(__file__).resolve().parents[2] / "data"


def _hits(pairs: list[tuple[str, str]], settings: PlannerSettings) -> list[bool]:
    vectors = get_embedder().embed([normalise(q) for pair in pairs for q in pair])  # one batch
    out = []
    for i, (a, b) in enumerate(pairs):
        va, vb = vectors[2 * i], vectors[2 * i + 1]
        stored = Candidate(key="k", question=a, answer="cached", distance=cosine_distance(va, vb))
        out.append(decide([stored], b, settings.cache_hard_threshold, settings.cache_soft_threshold, 2).hit is not None)
    return out


def test_no_near_miss_hits_at_the_default_and_most_paraphrases_do() -> None:
    data = yaml.safe_load((DATA / "cache_pairs.yaml").read_text())
    settings = PlannerSettings()
    misses = [(m["a"], m["b"]) for m in data["near_misses"]]
    wrong = [pair for pair, hit in zip(misses, _hits(misses, settings), strict=True) if hit]
    assert wrong == [], f"near misses answered from the cache: {wrong}"
    paraphrases = [(p[0], p[1]) for p in data["paraphrases"]]
    rate = sum(_hits(paraphrases, settings)) / len(paraphrases)
    assert rate >= 0.9, f"paraphrase hit rate {rate:.2f} fell below 0.9 (documented: 0.94)"
    assert {m["kind"] for m in data["near_misses"]} >= {"opposite", "number", "entity", "negation", "scope",
                                                        "substitution"}
