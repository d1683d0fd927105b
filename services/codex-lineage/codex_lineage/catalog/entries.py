"""Catalog entries with their ids (`dataset:<namespace>:<name>`, `job:<namespace>:<name>`, as Marquez names its
lineage nodes), from the declared catalog, this deployment's names and the tenants the record knows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from codex_lineage.lineage import Datasets
from moe_core.contracts import Topics

KINDS = ("topic", "table", "store", "graph_domain", "document_set", "job")


@dataclass(frozen=True)
class Names:
    """How this deployment names its datasets and jobs."""

    topics: Topics
    datasets: Datasets
    postgres: str  # postgres://host:port/db (no credentials)
    audit_schema: str
    job_namespace: str


def postgres_namespace(dsn: str) -> str:
    parsed = urlparse(dsn)
    return f"postgres://{parsed.hostname}:{parsed.port or 5432}{parsed.path or ''}"


def load(path: Path) -> dict[str, Any]:
    """The generated catalog (ValueError: missing or not one)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"the data catalog {path} cannot be read ({exc}): run `make schemas`") from None
    if not isinstance(doc, dict) or doc.get("format") != "moe-catalog/1":
        raise ValueError(f"{path} is not a data catalog (format moe-catalog/1)")
    return doc


def _entry(kind: str, namespace: str, name: str, owners: list[str], description: str,
           facets: dict[str, Any]) -> dict[str, Any]:
    prefix = "job" if kind == "job" else "dataset"
    return {"id": f"{prefix}:{namespace}:{name}", "kind": kind, "namespace": namespace, "name": name,
            "owners": owners, "description": description, "facets": facets}


def entries(doc: dict[str, Any], names: Names, tenants: list[str]) -> list[dict[str, Any]]:
    out = []
    for t in doc["topics"]:
        out.append(_entry("topic", names.datasets.kafka, getattr(names.topics, t["field"]), t["owners"],
                          f"{t['message']} messages, keyed by {t['key']}",
                          {k: t[k] for k in ("field", "message", "schema", "key", "retention_days", "consumers")}))
    for t in doc["tables"]:
        schema = names.audit_schema if t["store"] == "audit" else "public"
        out.append(_entry("table", names.postgres, f"{schema}.{t['name']}", t["owners"], t["purpose"],
                          {k: t[k] for k in ("store", "view", "writers", "readers")}))
    stores = {"neo4j": names.datasets.graph, "chroma": names.datasets.chroma}
    for s in doc["stores"]:
        out.append(_entry("store", stores[s["store"]], s["name"], [], s["purpose"], {"used_by": s["used_by"]}))
    graph = next((s for s in doc["stores"] if s["store"] == "neo4j"), None)
    if graph is not None:
        for tenant in tenants:
            out.append(_entry("graph_domain", names.datasets.graph, f"{graph['name']}/{tenant}", ["graph-ingest"],
                              f"tenant {tenant}'s domain of the knowledge graph",
                              {"tenant": tenant, "parent": f"dataset:{names.datasets.graph}:{graph['name']}",
                               "drift": f"/v1/health/drift/datasets/graph/{tenant}"}))
    for j in doc["jobs"]:
        out.append(_entry("job", names.job_namespace, j["name"], [j["name"]], j["summary"],
                          {k: j[k] for k in ("consumes", "publishes", "records_every_topic", "tables", "stores")}))
    return out


def search(items: list[dict[str, Any]], query: str | None, kind: str | None) -> list[dict[str, Any]]:
    """Entries of `kind` whose id, owners or description contain every word of `query` (case-insensitive)."""
    words = (query or "").lower().split()
    found = []
    for item in items:
        text = " ".join([item["id"], item["description"], *item["owners"]]).lower()
        if (kind is None or item["kind"] == kind) and all(w in text for w in words):
            found.append(item)
    return found
