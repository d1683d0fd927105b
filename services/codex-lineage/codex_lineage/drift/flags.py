"""The drift flags of one ingest run (pure): what the run declared it would add against what the graph grew by,
on the severity ladder ok < info < warn < crit.

| flag | raised when | severity |
|---|---|---|
| entity_count_shrank | the graph (the tenant's) has fewer entities after the run than before | crit |
| zero_entities_added | the run declared entities but the graph gained none | crit from `min_declared` on, else warn |
| entity_dedup_suppressed | it gained fewer than (1 - threshold) x declared | warn |
| entity_overshoot | it gained more than (1 + threshold) x declared | warn |
| relation_overshoot | relations gained more than (1 + threshold) x declared relations | warn |
| relation_to_entity_explosion | relations grew by at least 10x the entities (and by at least 10) | warn |

A run without a flag is `ok`, or `info` when it declared nothing (an answer with no facts to learn)."""

from __future__ import annotations

from typing import Any

SEVERITIES = ("ok", "info", "warn", "crit")
FLAGS = ("entity_count_shrank", "zero_entities_added", "entity_dedup_suppressed", "entity_overshoot",
         "relation_overshoot", "relation_to_entity_explosion")
EXPLOSION = 10


def worst(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


def compute_drift(declared_entities: int, declared_relations: int, delta_entities: int, delta_relations: int,
                  *, shrank: bool = False, threshold: float = 0.3, min_declared: int = 5) -> dict[str, Any]:
    flags: list[str] = []
    severity = "ok"
    if shrank:
        flags.append("entity_count_shrank")
        severity = "crit"
    if declared_entities > 0:
        if delta_entities <= 0:
            flags.append("zero_entities_added")
            severity = worst(severity, "crit" if declared_entities >= min_declared else "warn")
        elif delta_entities < (1 - threshold) * declared_entities:
            flags.append("entity_dedup_suppressed")
            severity = worst(severity, "warn")
        elif delta_entities > (1 + threshold) * declared_entities:
            flags.append("entity_overshoot")
            severity = worst(severity, "warn")
    if declared_relations > 0 and delta_relations > (1 + threshold) * declared_relations:
        flags.append("relation_overshoot")
        severity = worst(severity, "warn")
    if delta_relations >= EXPLOSION and delta_relations >= EXPLOSION * max(delta_entities, 1):
        flags.append("relation_to_entity_explosion")
        severity = worst(severity, "warn")
    if not flags and declared_entities == 0 and declared_relations == 0:
        severity = "info"
    return {"severity": severity, "flags": flags, "declared_entities": declared_entities,
            "declared_relations": declared_relations, "delta_entities": delta_entities,
            "delta_relations": delta_relations,
            "ratio_entities": round(delta_entities / declared_entities, 3) if declared_entities else None,
            "ratio_relations": round(delta_relations / declared_relations, 3) if declared_relations else None}
