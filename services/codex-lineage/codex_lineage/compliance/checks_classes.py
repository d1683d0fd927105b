"""The data-class check: every request of the window whose tenant carries one of the listed classes (e.g.
personal) reached only the datasets and models its class allows (policy/data-classes.yaml), read from the
requests' OpenLineage events in the audit store."""

from __future__ import annotations

import json
from typing import Any

from codex_lineage.compliance.outcome import Outcome, verdict
from codex_lineage.compliance.sources import Sources
from moe_core.policy.classes import classify_request

LINEAGE = """
SELECT tenant_id, response_id, body FROM audit_log
WHERE kind = 'lineage' AND response_id IS NOT NULL AND recorded_at >= now() - make_interval(hours => $1)
ORDER BY tenant_id, seq
"""
SHOWN = 20  # findings listed in the evidence (the count is whole)


async def data_class_flow(src: Sources, params: dict[str, Any]) -> Outcome:
    """params: classes (the data classes to check, e.g. [personal]), hours (the window, default 24)."""
    if src.classes is None:
        return Outcome("fail", "no data-class file is in force", {})
    policy = src.classes()
    classes = set(params.get("classes") or ["personal"])
    hours = float(params.get("hours", 24))
    requests: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in await src.store.pool.fetch(LINEAGE, hours):
        if policy.of_tenant(row["tenant_id"]) in classes:
            requests.setdefault((row["tenant_id"], row["response_id"]), []).append(json.loads(row["body"]))
    evidence: dict[str, Any] = {"source": "the audit store's lineage events; the data-class file in force",
                                "classes": sorted(classes), "hours": hours, "requests": len(requests),
                                "allowed": {c: policy.allowed[c].model_dump() for c in sorted(classes)
                                            if c in policy.allowed}}
    if not requests:
        return Outcome("not_applicable", f"no request of a {'/'.join(sorted(classes))} tenant in the last "
                                         f"{hours:g} hours", evidence)
    flagged = []
    for (tenant, rid), events in sorted(requests.items()):
        found = classify_request(policy, tenant, events)
        if found["findings"]:
            flagged.append({"tenant": tenant, "response_id": rid, "class": found["class"],
                            "findings": found["findings"]})
    evidence["flagged"] = len(flagged)
    evidence["findings"] = flagged[:SHOWN]
    return verdict(not flagged, f"{len(requests)} requests reached only what their class allows",
                   f"{len(flagged)} of {len(requests)} requests reached a dataset or model their class does not "
                   "allow", evidence)
