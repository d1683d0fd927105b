"""The declared lineage graph, in the shape of Marquez's lineage API: nodes (datasets and jobs) with their in and
out edges, upstream and downstream of any node to a depth. A job's inputs are the topics it consumes and the
tables it only reads; its outputs the topics it publishes and the tables it writes. The stores (the knowledge
graph, the semantic cache) have no declared direction and no edges; a tenant's graph domain links to its store."""

from __future__ import annotations

from collections import deque
from typing import Any

DIRECTIONS = ("both", "upstream", "downstream")


def edges(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    by_kind: dict[tuple[str, str], str] = {}
    for item in items:
        if item["kind"] == "topic":
            by_kind[("topic", item["facets"]["field"])] = item["id"]
        elif item["kind"] == "table":
            by_kind[("table", item["name"].split(".", 1)[1])] = item["id"]
    out: list[tuple[str, str]] = []
    for job in (i for i in items if i["kind"] == "job"):
        f = job["facets"]
        consumed = [t for (k, t) in by_kind if k == "topic"] if f["records_every_topic"] else f["consumes"]
        out += [(by_kind[("topic", t)], job["id"]) for t in consumed if ("topic", t) in by_kind]
        out += [(job["id"], by_kind[("topic", t)]) for t in f["publishes"] if ("topic", t) in by_kind]
        for table, privileges in f["tables"].items():
            if ("table", table) in by_kind:
                writes = set(privileges) - {"SELECT"}
                out.append((job["id"], by_kind[("table", table)]) if writes else (by_kind[("table", table)],
                                                                                   job["id"]))
    jobs = {i["name"]: i["id"] for i in items if i["kind"] == "job"}
    for docs in (i for i in items if i["kind"] == "document_set"):  # written by its owners, read by graph-rag
        out += [(jobs[o], docs["id"]) for o in docs["owners"] if o in jobs]
        out += [(docs["id"], jobs[r]) for r in docs["facets"].get("read_by", []) if r in jobs]
    return sorted(set(out))


def lineage(items: list[dict[str, Any]], node_id: str, depth: int, direction: str) -> dict[str, Any]:
    """The nodes within `depth` edges of `node_id` (KeyError: no such node), Marquez's {"graph": [...]}."""
    nodes = {i["id"]: i for i in items}
    if node_id not in nodes:
        raise KeyError(node_id)
    all_edges = edges(items)
    out_of: dict[str, list[str]] = {}
    into: dict[str, list[str]] = {}
    for origin, destination in all_edges:
        out_of.setdefault(origin, []).append(destination)
        into.setdefault(destination, []).append(origin)
    seen = {node_id: 0}
    queue = deque([node_id])
    while queue:
        current = queue.popleft()
        if seen[current] >= depth:
            continue
        nexts = (out_of.get(current, []) if direction in ("both", "downstream") else []) + \
                (into.get(current, []) if direction in ("both", "upstream") else [])
        for nxt in nexts:
            if nxt not in seen:
                seen[nxt] = seen[current] + 1
                queue.append(nxt)
    graph = []
    for nid in sorted(seen, key=lambda n: (seen[n], n)):
        item = nodes[nid]
        graph.append({"id": nid, "type": "JOB" if item["kind"] == "job" else "DATASET", "depth": seen[nid],
                      "data": item,
                      "inEdges": [{"origin": o, "destination": nid} for o in into.get(nid, []) if o in seen],
                      "outEdges": [{"origin": nid, "destination": d} for d in out_of.get(nid, []) if d in seen]})
    return {"graph": graph}
