"""Trust of a relation: confidence x source weight x decay(age) x verified bonus, clamped to [0, 1].

The original's formula and weights (docs/seed-defaults.md): weights ontology 1.0, gap healer 0.9, extracted
0.6; decay max(0.3, 1 - days/365) for every relation; a verified relation counts 1.5 x. Pure functions; the
services recompute trust in pages over the whole graph and after feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_S = 86_400.0

WEIGHT_ONTOLOGY = 1.0
WEIGHT_HEALER = 0.9
WEIGHT_EXTRACTED = 0.6
WEIGHT_IMPORTED = 0.5  # approved knowledge bundles (the original has none): below what a tenant learned itself
VERIFIED_BONUS = 1.5
# Sources whose knowledge does not age: none, as in the original (the base ontology decays too; re-seeding
# it at start does not make it younger).
TIMELESS_SOURCES: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TrustPolicy:
    decay_days: float = 365.0
    decay_min: float = 0.3
    verified_bonus: float = VERIFIED_BONUS
    source_weights: dict[str, float] = field(
        default_factory=lambda: {"ontology": WEIGHT_ONTOLOGY, "gap_healer": WEIGHT_HEALER,
                                 "extracted": WEIGHT_EXTRACTED, "imported": WEIGHT_IMPORTED}
    )
    timeless_sources: frozenset[str] = TIMELESS_SOURCES
    # The decay rule of linting: below this trust, unverified and asserted once -> deleted.
    decay_floor: float = 0.2

    def decay(self, age_s: float) -> float:
        """Linear decay over `decay_days`, never below `decay_min`; a future timestamp counts as age 0."""
        if self.decay_days <= 0:
            return 1.0
        return max(self.decay_min, 1.0 - max(age_s, 0.0) / (self.decay_days * DAY_S))

    def trust(self, *, confidence: float, source: str, asserted_at: float, verified: bool, now: float) -> float:
        weight = self.source_weights.get(source, min(self.source_weights.values()))
        decay = 1.0 if source in self.timeless_sources else self.decay(now - asserted_at)
        bonus = self.verified_bonus if verified else 1.0
        value = max(0.0, min(1.0, confidence)) * weight * decay * bonus
        return round(max(0.0, min(1.0, value)), 6)

    def decayed(self, *, trust: float, verified: bool, assertions: int, source: str) -> bool:
        """The decay rule: trust < floor, unverified, asserted only once, and not curated ontology."""
        return trust < self.decay_floor and not verified and assertions <= 1 and source != "ontology"


CONFIDENCE_FACTOR: dict[str, float] = {"high": 1.0, "medium": 0.85, "low": 0.6}


def extraction_confidence(triple_confidence: float, answer_confidence: str) -> float:
    """A triple is as trustworthy as the model's confidence in it and the answer it came from."""
    return round(max(0.0, min(1.0, triple_confidence)) * CONFIDENCE_FACTOR.get(answer_confidence, 0.85), 6)
