"""A request's OpenLineage events as the elements of a graph (Cytoscape.js' JSON: nodes and edges): one node per
stage run (its job), one per dataset it read or wrote (namespace:name), an edge from each input dataset to the run
and from the run to each output. START and COMPLETE of a run are one node; the request's parent run is left out
(every stage run is its child). The provenance of the knowledge-graph facts a run used (moe_core.audit.fact_lineage)
adds a node per fact, the import that wrote it, its approvals and its source document, each with its details.
Pure: events in, elements out."""

from __future__ import annotations

from typing import Any

PARENT_JOB = "request"


def _short(namespace: str, name: str) -> str:
    return name if namespace.startswith(("kafka://", "postgres://")) else f"{namespace.split('://')[0]}: {name}"


def elements(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    for event in events:
        job = str((event.get("job") or {}).get("name") or "")
        run = str((event.get("run") or {}).get("runId") or "")
        if not run or job == PARENT_JOB:
            continue
        facets = (event.get("run") or {}).get("facets") or {}
        failed = event.get("eventType") == "FAIL" or "moe_error" in facets
        node = nodes.setdefault(f"run:{run}", {"id": f"run:{run}", "label": job, "kind": "run", "failed": False})
        node["failed"] = node["failed"] or failed
        model = facets.get("moe_model") or {}
        if model.get("model"):
            node["model"] = f"{model.get('model')} @ {model.get('server') or '-'}"
        for direction in ("inputs", "outputs"):
            for ds in event.get(direction) or []:
                ns, name = str(ds.get("namespace")), str(ds.get("name"))
                did = f"dataset:{ns}:{name}"
                data = nodes.setdefault(did, {"id": did, "label": _short(ns, name), "kind": "dataset"})
                used = (ds.get("inputFacets") or {}).get("moe_graph_facts") or {}
                if used.get("factIds"):
                    data["facts"] = sorted(set(data.get("facts", [])) | set(used["factIds"]))
                source, target = (did, f"run:{run}") if direction == "inputs" else (f"run:{run}", did)
                eid = f"{source}->{target}"
                edges.setdefault(eid, {"id": eid, "source": source, "target": target})
    return [{"data": n} for n in nodes.values()] + [{"data": e} for e in edges.values()]


# What the page shows of a provenance node when it is selected, per kind: (label, key in its data).
DETAILS = {
    "fact": (("fact", "fact_id"),),
    "import": (("status", "status"), ("importer", "importer"), ("imported", "imported_at"),
               ("approvals required", "approvals_required"), ("applied", "applied_at"),
               ("relations written", "relations_written"), ("bundle", "bundle_digest"),
               ("from tenant", "origin_tenant"), ("policy", "policy_version")),
    "approval": (("principal", "principal"), ("key", "key"), ("at", "at"), ("note", "note")),
    "document": (("document", "document_id"), ("digest", "sha256"), ("source", "source")),
    "quarantine": (("status", "status"), ("why", "reason"), ("held", "held_at"), ("triple", "triple"),
                   ("domains", "domains"), ("approvals required", "approvals_required"), ("released", "released_at"),
                   ("rejected", "rejected_at"), ("policy", "policy_version")),
    "answer": (("tenant", "tenant_id"), ("expert", "source_expert"), ("model", "source_model")),
    "memory_ingest": (("submitted by", "submitted_by"),),
}


def provenance_elements(provenance: dict[str, Any] | None, known: set[str]) -> list[dict[str, Any]]:
    """The facts, imports, approvals, documents and quarantine entries (with the answer or memory-ingest text a held
    fact was learned from) of a request's provenance graph, and the edges between them and
    the stage runs already drawn (`known`: their node ids). The answer node itself is the page."""
    if not provenance:
        return []
    out: list[dict[str, Any]] = []
    drawn = set(known)
    for node in provenance.get("nodes") or []:
        kind, data = node.get("kind"), node.get("data") or {}
        if kind not in DETAILS or node["id"] in drawn or node["id"] == provenance.get("root"):  # the page's answer
            continue
        details = "; ".join(f"{label}: {data[key]}" for label, key in DETAILS[kind] if data.get(key) not in (None, ""))
        out.append({"data": {"id": node["id"], "label": str(node.get("label") or node["id"]), "kind": kind,
                             "details": details}})
        drawn.add(node["id"])
    for edge in provenance.get("edges") or []:
        if edge["source"] in drawn and edge["target"] in drawn:
            eid = f"{edge['source']}->{edge['target']}"
            out.append({"data": {"id": eid, "source": edge["source"], "target": edge["target"],
                                 "relation": edge.get("relation")}})
    return out
