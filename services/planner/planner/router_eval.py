"""The router measured on its labelled set (tests/data/router_set.yaml), for any embedding: pure, numpy only.

An item is right when a `routed` question gets a clear route to its category, or a `planner` question gets none.
A clear route to another category (or any clear route of a `planner` question) is a *wrong clear*: the planner model
is skipped and the wrong expert answers, the costly error. A routed question without a clear route only falls to the
planner model (a lost shortcut). Thresholds are chosen on one half of the set (`halves`) and held against the other,
as the semantic cache's were on its even/odd pairs (bench.router_static, tests/unit/planner/test_router.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from planner.cache_text import normalise
from planner.router import NEIGHBOURS, Route, decide, is_clear

Embed = Callable[[list[str]], Any]


@dataclass(frozen=True)
class Case:
    question: str
    expected: str | None  # None: must go to the planner model
    index: int  # position within its category's list (or the planner list): the halves split on it


@dataclass(frozen=True)
class Score:
    items: int
    right: int
    wrong_clear: int
    fell: int  # routed questions left to the planner model
    trivial_right: int  # routed questions whose trivial expert (nearest category within the threshold) is right

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def load_set(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text())
    cases = [Case(q, c, i) for c, qs in data["routed"].items() for i, q in enumerate(qs)]
    return cases + [Case(q, None, i) for i, q in enumerate(data["planner"])]


def halves(cases: Sequence[Case]) -> tuple[list[Case], list[Case]]:
    """(even, odd) items of every category and of the planner list: both halves hold every category."""
    return [c for c in cases if c.index % 2 == 0], [c for c in cases if c.index % 2 == 1]


class Space:
    """The prototypes and the questions embedded once by one model; decisions at any threshold and margin."""

    def __init__(self, embed: Embed, prototypes: dict[str, list[str]], cases: Sequence[Case]) -> None:
        self.labels = [c for c, qs in prototypes.items() for _ in qs]
        protos = np.asarray(embed([normalise(q) for qs in prototypes.values() for q in qs]), dtype=np.float32)
        vectors = np.asarray(embed([normalise(c.question) for c in cases]), dtype=np.float32)
        distances = 1.0 - _unit(vectors) @ _unit(protos).T  # cosine, as SemanticRouter computes it
        nearest = {c.question: sorted(zip(self.labels, row.tolist(), strict=True), key=lambda x: x[1])[:NEIGHBOURS]
                   for c, row in zip(cases, distances, strict=True)}
        self.routes = {q: decide(n, 0.0, 0.0) for q, n in nearest.items()}  # category, distance, lead: any setting

    def route(self, case: Case, threshold: float, margin: float) -> Route | None:
        r = self.routes[case.question]
        return r and replace(r, clear=is_clear(r.category, r.distance, r.margin, threshold, margin))

    def score(self, cases: Sequence[Case], threshold: float, margin: float) -> Score:
        right = wrong = fell = trivial = 0
        for case in cases:
            route = self.route(case, threshold, margin)
            clear = route is not None and route.clear
            if case.expected is None:
                right += not clear
                wrong += clear
                continue
            correct = route is not None and route.category == case.expected
            right += clear and correct
            wrong += clear and not correct
            fell += not clear
            trivial += correct and route is not None and route.distance <= threshold
        return Score(len(cases), right, wrong, fell, trivial)


def choose(space: Space, cases: Sequence[Case], max_wrong_clear: int = 0) -> tuple[float, float, Score]:
    """The threshold and margin (a 0.01 grid) with the most right items among those with at most `max_wrong_clear`
    wrong clear decisions on `cases`; ties go to the larger margin, then the smaller threshold (the cautious end)."""
    best: tuple[tuple[int, float, float], float, float, Score] | None = None
    for t, m in itertools.product(range(0, 101), range(0, 41)):
        threshold, margin = t / 100, m / 100
        score = space.score(cases, threshold, margin)
        if score.wrong_clear > max_wrong_clear:
            continue
        key = (score.right, margin, -threshold)
        if best is None or key > best[0]:
            best = (key, threshold, margin, score)
    assert best is not None  # a zero threshold routes nothing: always allowed
    return best[1], best[2], best[3]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
