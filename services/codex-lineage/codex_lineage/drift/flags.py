"""The drift flags of one ingest run (pure): what the run declared it would add against what the graph grew by,
on the severity ladder ok < info < warn < crit (`zero_entities_added` is warn below `min_declared`).

| flag | raised when | severity |
|---|---|---|
| entity_count_shrank | the graph (the tenant's) has fewer entities after the run than before | crit |
| zero_entities_added | the run had to add entities (below) but the graph gained none | crit from `min_declared` |
| entity_dedup_suppressed | it gained fewer than (1 - threshold) x the entities it had to add | warn |
| entity_overshoot | it gained more than (1 + threshold) x declared | warn |
| relation_overshoot | relations gained more than (1 + threshold) x declared relations | warn |
| relation_to_entity_explosion | relations grew by at least 10x the entities (and by at least 10) | warn |
| nothing_written | an ingest run declared triples, wrote none, and no conflict or quarantine accounts for them | crit |

**Judged against the dataset's own baseline**: a run's entities are merged into the graph, so an entity the graph
already knows adds nothing, and an ingest run that writes triples among known entities is healthy. What a run
*had to add* (`expected_new_entities`) is what its dataset could not already hold: for an ingest run at least
`written - entities before the run` (a graph of 100 entities may know all of a run's 6; an empty one knows none);
for a knowledge import the bundle's own diff against the graph (`entities_added`). The overshoot flags still
compare with everything the run declared (a graph cannot gain more entities than it was given).

A run without a flag is `ok`, or `info` when it declared nothing (an answer with no facts to learn)."""

from __future__ import annotations

from typing import Any

SEVERITIES = ("ok", "info", "warn", "crit")
FLAGS = ("entity_count_shrank", "zero_entities_added", "entity_dedup_suppressed", "entity_overshoot",
         "relation_overshoot", "relation_to_entity_explosion", "nothing_written")
EXPLOSION = 10


def worst(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


def compute_drift(declared_entities: int, declared_relations: int, delta_entities: int, delta_relations: int,
                  *, shrank: bool = False, threshold: float = 0.3, min_declared: int = 5,
                  expected_new_entities: int | None = None) -> dict[str, Any]:
    """`expected_new_entities`: how many of the declared entities the dataset could not already hold (default:
    all of them)."""
    flags: list[str] = []
    severity = "ok"
    if shrank:
        flags.append("entity_count_shrank")
        severity = "crit"
    expected = declared_entities if expected_new_entities is None else min(expected_new_entities, declared_entities)
    if expected > 0 and delta_entities <= 0:
        flags.append("zero_entities_added")
        severity = worst(severity, "crit" if expected >= min_declared else "warn")
    elif expected > 0 and delta_entities < (1 - threshold) * expected:
        flags.append("entity_dedup_suppressed")
        severity = worst(severity, "warn")
    elif declared_entities > 0 and delta_entities > (1 + threshold) * declared_entities:
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
            "delta_relations": delta_relations, "expected_new_entities": expected,
            "ratio_entities": round(delta_entities / declared_entities, 3) if declared_entities else None,
            "ratio_relations": round(delta_relations / declared_relations, 3) if declared_relations else None}


def unwritten(declared_relations: int, written_relations: int, accounted: int) -> tuple[str, list[str]]:
    """An ingest run that declared triples and wrote none, with fewer conflicts and quarantines of its answer than
    triples to account for them: its writes were lost (crit). Held or rejected triples are no drift."""
    if declared_relations > 0 and written_relations == 0 and accounted < declared_relations:
        return "crit", ["nothing_written"]
    return "ok", []
