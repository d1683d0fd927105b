"""Trust of a relation: confidence x source weight x decay(age) x verified bonus, clamped to [0, 1].

Pure functions; the services recompute trust in pages over the whole graph and after feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_S = 86_400.0


@dataclass(frozen=True)
class TrustPolicy:
    half_life_days: float = 180.0
    verified_bonus: float = 1.25
    source_weights: dict[str, float] = field(
        default_factory=lambda: {"ontology": 1.0, "gap_healer": 0.8, "extracted": 0.7, "imported": 0.6}
    )
    # Sources whose knowledge does not age (the curated base ontology).
    timeless_sources: frozenset[str] = frozenset({"ontology"})
    # The decay rule of linting: below this trust, unverified and asserted once -> deleted.
    decay_floor: float = 0.2

    def decay(self, age_s: float) -> float:
        """Exponential decay with the configured half-life; a future timestamp counts as age 0."""
        if self.half_life_days <= 0:
            return 1.0
        return float(0.5 ** (max(age_s, 0.0) / (self.half_life_days * DAY_S)))

    def trust(self, *, confidence: float, source: str, asserted_at: float, verified: bool, now: float) -> float:
        weight = self.source_weights.get(source, min(self.source_weights.values()))
        decay = 1.0 if source in self.timeless_sources else self.decay(now - asserted_at)
        bonus = self.verified_bonus if verified else 1.0
        value = max(0.0, min(1.0, confidence)) * weight * decay * bonus
        return round(max(0.0, min(1.0, value)), 6)

    def decayed(self, *, trust: float, verified: bool, assertions: int, source: str) -> bool:
        """The decay rule: trust < floor, unverified, asserted only once, and not curated ontology."""
        return trust < self.decay_floor and not verified and assertions <= 1 and source not in self.timeless_sources


CONFIDENCE_FACTOR: dict[str, float] = {"high": 1.0, "medium": 0.85, "low": 0.6}


def extraction_confidence(triple_confidence: float, answer_confidence: str) -> float:
    """A triple is as trustworthy as the model's confidence in it and the answer it came from."""
    return round(max(0.0, min(1.0, triple_confidence)) * CONFIDENCE_FACTOR.get(answer_confidence, 0.85), 6)
