"""The distribution of 2-hop reach over the entities a tenant sees: the evidence for choosing the
blast-radius threshold of graph-ingest."""

from __future__ import annotations

from dataclasses import dataclass

from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.vocab import visible_tenants

REACH_ALL = """
MATCH (e:Entity)
WHERE e.tenant IN $tenants
OPTIONAL MATCH (e)(()-[r:REL WHERE r.tenant IN $tenants]-(x:Entity WHERE x.tenant IN $tenants)){1,2}(n)
WHERE n <> e
RETURN e.name AS name, count(DISTINCT n) AS reach
ORDER BY reach DESC, name
"""


@dataclass(frozen=True)
class ReachReport:
    reaches: list[tuple[str, int]]  # (entity, reach), largest first

    def percentile(self, p: float) -> int:
        values = sorted(r for _, r in self.reaches)
        return values[min(len(values) - 1, int(p * len(values)))]

    def summary(self) -> dict[str, int]:
        return {"min": self.reaches[-1][1], "median": self.percentile(0.5), "p90": self.percentile(0.9),
                "p95": self.percentile(0.95), "max": self.reaches[0][1]}

    def above(self, limit: int) -> list[str]:
        return [f"{name} ({reach})" for name, reach in self.reaches if reach > limit]


async def reach_distribution(db: GraphDB, tenant: str) -> ReachReport:
    rows = await db.read(REACH_ALL, tenants=visible_tenants(tenant))
    return ReachReport([(r["name"], int(r["reach"])) for r in rows])
