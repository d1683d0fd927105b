"""Semantic router: the pure decision, and the labelled routing set at the default threshold and margin
(real embeddings; tests/infra/planner/test_semantic_cache.py routes through the Chroma server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moe_core.knowledge.embeddings import MODEL_ID, get_embedder
from moe_core.knowledge.static_embedding import MODEL_ID as STATIC_MODEL_ID
from moe_core.knowledge.static_embedding import get_static_embedder
from planner.router import decide, prototypes_version
from planner.router_eval import Case, Space, choose, halves, load_set
from planner.router_prototypes import MIXED, PROTOTYPES
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit
SET = Path(__file__).resolve().parents[2] / "data" / "router_set.yaml"

# MiniLM at 0.55/0.15 with the prototypes before the switch to the static embedding (bench.router_static, 88 items):
# the held-apart (odd) half, 44 items: 22 right, 0 wrong clear decisions.
MINILM_HELD_RIGHT = 22
MINILM_HELD_WRONG_CLEAR = 0


def test_router_needs_distance_and_a_lead_over_the_next_category() -> None:
    clear = decide([("math", 0.30), ("math", 0.35), ("science", 0.60)], threshold=0.55, margin=0.15)
    assert clear is not None and (clear.category, clear.clear) == ("math", True)
    assert round(clear.margin, 2) == 0.30
    close_call = decide([("math", 0.30), ("science", 0.40)], threshold=0.55, margin=0.15)
    assert close_call is not None and not close_call.clear and close_call.category == "math"
    too_far = decide([("math", 0.70), ("science", 0.95)], threshold=0.55, margin=0.15)
    assert too_far is not None and not too_far.clear
    alone = decide([("math", 0.20)], threshold=0.55, margin=0.15)
    assert alone is not None and alone.clear
    assert decide([], threshold=0.55, margin=0.15) is None


def test_a_question_nearest_to_the_mixed_prototypes_is_never_clear() -> None:
    mixed = decide([(MIXED, 0.10), ("math", 0.90)], threshold=0.55, margin=0.15)
    assert mixed is not None and mixed.category == MIXED and not mixed.clear


def test_the_prototypes_collection_is_named_per_embedding_model() -> None:
    assert prototypes_version(PROTOTYPES, MODEL_ID) != prototypes_version(PROTOTYPES, STATIC_MODEL_ID)
    assert prototypes_version(PROTOTYPES, STATIC_MODEL_ID) == prototypes_version(dict(PROTOTYPES), STATIC_MODEL_ID)


def test_the_score_counts_wrong_clear_decisions_and_lost_shortcuts() -> None:
    cases = [Case("Solve 2x = 4", "math", 0), Case("Write a poem and fix my code", None, 0)]
    vectors = {"solve 2x = 4": [1.0, 0.0], "write a poem and fix my code": [0.0, 1.0],  # the questions
               "p0": [1.0, 0.0], "p1": [0.0, 1.0]}  # one prototype each of math and creative_writer

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray([vectors[t] for t in texts], dtype=np.float32)

    space = Space(embed, {"math": ["p0"], "creative_writer": ["p1"]}, cases)
    score = space.score(cases, threshold=0.5, margin=0.5)  # both clear: one right, the mixed one wrongly routed
    assert (score.right, score.wrong_clear, score.fell, score.trivial_right) == (1, 1, 0, 1)
    assert space.score(cases, threshold=0.5, margin=1.5).as_dict() == {
        "items": 2, "right": 1, "wrong_clear": 0, "fell": 1, "trivial_right": 1}  # no lead is enough: no route
    threshold, margin, tuned = choose(space, cases[:1])  # chosen on the routed question alone
    assert tuned.right == 1 and threshold >= 0.0 and margin >= 0.0


def test_halves_hold_every_category() -> None:
    even, odd = halves(load_set(SET))
    assert {c.expected for c in even} == {c.expected for c in odd}
    assert not {c.question for c in even} & {c.question for c in odd}


def test_the_static_router_is_no_worse_than_minilm_on_the_held_apart_half() -> None:
    """The default (static) threshold and margin are what `choose` picks on the even half; on the odd half they
    route at least as many questions right as MiniLM did, and send no more to a wrong expert."""
    settings = PlannerSettings()
    assert settings.router_embedding == "static"
    cases = load_set(SET)
    even, odd = halves(cases)
    space = Space(get_static_embedder().embed, PROTOTYPES, cases)
    assert choose(space, even)[:2] == settings.router_distances()
    held = space.score(odd, *settings.router_distances())
    assert held.wrong_clear <= MINILM_HELD_WRONG_CLEAR
    assert held.right >= MINILM_HELD_RIGHT


def test_minilm_still_never_routes_to_a_wrong_expert_at_its_own_settings() -> None:
    settings = PlannerSettings(router_embedding="minilm")
    cases = load_set(SET)
    score = Space(get_embedder().embed, PROTOTYPES, cases).score(cases, *settings.router_distances())
    assert score.wrong_clear == 0 and score.right >= MINILM_HELD_RIGHT * 2
