"""The fleet's data catalog as declared: every topic (its message, key, default retention, the services that
publish and consume it), every Postgres table and view (owner, readers, writers, purpose) and the stores the
services need (the knowledge graph, the semantic cache), and every service as a job with its declared inputs
and outputs. Generated into docs/catalog.json by `make schemas` (moe_tools.stage_docs) from the stage registry,
moe_core.runtime.pg.tables and moe_core.runtime.retention; codex-lineage serves it, with its deployment's names and the
knowledge graph's tenant domains, at /v1/catalog (codex_lineage.catalog). Services do not import each other:
they read the generated file, as the docs do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import moe_core.stage.registry as stage_registry
from moe_core.contracts.topics import TOPIC_MESSAGES, UNRECORDED, topic_key
from moe_core.runtime.pg.tables import TABLES
from moe_core.runtime.retention import DEFAULT_RETENTION_DAYS
from moe_core.stage.spec import EVERY_TOPIC

CATALOG = Path("docs") / "catalog.json"
FORMAT = "moe-catalog/1"
# stores named in the declarations' `needs`, as the OpenLineage datasets the fleet's lineage events use
STORES = {"neo4j": ("graph", "knowledge-graph", "the knowledge graph (entities, relations), one domain per tenant"),
          "chroma": ("chroma", "semantic-cache", "the semantic cache's durable copy (questions, answers)")}


def catalog_document() -> dict[str, Any]:
    declarations = stage_registry.declarations()
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    jobs = []
    for d in declarations:
        every = any(c.topic == EVERY_TOPIC for c in d.consumes)  # codex-lineage records every topic
        consumed = sorted({c.topic for c in d.consumes} - {EVERY_TOPIC})
        for topic in consumed:
            consumers.setdefault(topic, []).append(d.name)
        for topic in (t for t in TOPIC_MESSAGES if every and t not in UNRECORDED):
            consumers.setdefault(topic, []).append(d.name)
        for topic in d.publishes:
            producers.setdefault(topic, []).append(d.name)
        uses = {t.name: sorted(t.access[d.name]) for t in TABLES if d.name in t.access}
        jobs.append({"name": d.name, "summary": d.summary, "consumes": consumed, "publishes": sorted(d.publishes),
                     "records_every_topic": every,
                     "tables": uses, "stores": sorted(set(d.needs) & set(STORES))})
    topics = [{"kind": "topic", "field": field, "message": message, "schema": f"{message}.schema.json",
               "key": topic_key(field),
               "retention_days": DEFAULT_RETENTION_DAYS.get(field),
               "owners": sorted(set(producers.get(field, []))), "consumers": sorted(set(consumers.get(field, [])))}
              for field, message in sorted(TOPIC_MESSAGES.items())]
    tables = [{"kind": "table", "name": t.name, "store": t.store, "view": t.view, "owners": [t.owner],
               "writers": t.writers(), "readers": t.readers(), "purpose": t.purpose} for t in TABLES]
    stores = [{"kind": "store", "store": store, "name": name, "purpose": purpose,
               "used_by": sorted(d.name for d in declarations if store in d.needs)}
              for store, (_, name, purpose) in sorted(STORES.items())]
    return {"format": FORMAT, "topics": topics, "tables": tables, "stores": stores,
            "jobs": sorted(jobs, key=lambda j: str(j["name"]))}


def catalog_json() -> str:
    return json.dumps(catalog_document(), indent=2, sort_keys=True) + "\n"
