"""Semantic router: the pure decision, and the labelled routing set at the default threshold and margin
(real embeddings; tests/infra/planner/test_semantic_cache.py routes through the Chroma server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from moe_core.knowledge.embeddings import get_embedder
from planner.cache_text import normalise
from planner.router import NEIGHBOURS, decide
from planner.router_prototypes import PROTOTYPES
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit
DATA = Path(__file__).resolve().parents[2] / "data"


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


def test_router_default_never_routes_to_a_wrong_expert_on_the_labelled_set() -> None:
    data = yaml.safe_load((DATA / "router_set.yaml").read_text())
    settings = PlannerSettings()
    embedder = get_embedder()
    labels = [c for c, qs in PROTOTYPES.items() for _ in qs]
    protos = embedder.embed([normalise(q) for qs in PROTOTYPES.values() for q in qs])
    cases = [(q, c) for c, qs in data["routed"].items() for q in qs] + [(q, None) for q in data["planner"]]
    right = 0
    questions = embedder.embed([normalise(q) for q, _ in cases])  # one batch
    for (question, expected), vector in zip(cases, questions, strict=True):
        dist = 1.0 - protos @ vector
        nearest = sorted(zip(labels, dist.tolist(), strict=True), key=lambda x: x[1])[:NEIGHBOURS]
        decision = decide(nearest, settings.router_threshold, settings.router_margin)
        if decision is not None and decision.clear:
            assert decision.category == expected, f"{question!r} routed to {decision.category}, not {expected}"
            right += 1
    assert right >= 20  # 25 of 48 measured; the rest go to the planner model (no wrong answer, no shortcut)
