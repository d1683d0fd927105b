"""Constraints and indexes of the knowledge graph, created idempotently at start by every graph service."""

from __future__ import annotations

import logging

from neo4j.exceptions import ClientError

from moe_core.knowledge.graph.driver import GraphDB

log = logging.getLogger(__name__)

STATEMENTS = (
    "CREATE CONSTRAINT entity_uid IF NOT EXISTS FOR (e:Entity) REQUIRE e.uid IS UNIQUE",
    "CREATE CONSTRAINT entity_tenant_key IF NOT EXISTS FOR (e:Entity) REQUIRE (e.tenant, e.key) IS UNIQUE",
    "CREATE CONSTRAINT relation_id IF NOT EXISTS FOR ()-[r:REL]-() REQUIRE r.id IS UNIQUE",
    "CREATE CONSTRAINT quarantine_id IF NOT EXISTS FOR (q:Quarantine) REQUIRE q.id IS UNIQUE",
    "CREATE CONSTRAINT synthesis_id IF NOT EXISTS FOR (s:Synthesis) REQUIRE s.id IS UNIQUE",
    "CREATE CONSTRAINT graph_version_tenant IF NOT EXISTS FOR (v:GraphVersion) REQUIRE v.tenant IS UNIQUE",
    "CREATE CONSTRAINT ontology_seed_digest IF NOT EXISTS FOR (s:OntologySeed) REQUIRE s.digest IS UNIQUE",
    # one node per alias key of an entity (graph.alias_nodes): made once per (entity, key), found by (tenant, key)
    "CREATE CONSTRAINT alias_key_uid_key IF NOT EXISTS FOR (a:AliasKey) REQUIRE (a.uid, a.key) IS UNIQUE",
    "CREATE CONSTRAINT ontology_gap_id IF NOT EXISTS FOR (g:OntologyGap) REQUIRE g.id IS UNIQUE",
    "CREATE INDEX entity_tenant IF NOT EXISTS FOR (e:Entity) ON (e.tenant)",
    # graph-rag reads the entities a tenant wrote since its cached lexicon (graph_rag.retrieval)
    "CREATE INDEX entity_tenant_lex IF NOT EXISTS FOR (e:Entity) ON (e.tenant, e.lex)",
    "CREATE INDEX alias_key_tenant_key IF NOT EXISTS FOR (a:AliasKey) ON (a.tenant, a.key)",
    "CREATE INDEX relation_tenant IF NOT EXISTS FOR ()-[r:REL]-() ON (r.tenant)",
    "CREATE INDEX relation_type IF NOT EXISTS FOR ()-[r:REL]-() ON (r.type)",
    "CREATE INDEX quarantine_tenant_status IF NOT EXISTS FOR (q:Quarantine) ON (q.tenant, q.status)",
)


async def ensure_schema(db: GraphDB) -> None:
    """Create what is missing. Several services may race here; an 'already exists' error is success."""
    for statement in STATEMENTS:
        try:
            await db.write(statement)
        except ClientError as exc:
            if "AlreadyExists" not in (exc.code or "") and "EquivalentSchemaRule" not in (exc.code or ""):
                raise
            log.debug("schema rule exists already: %s", exc.code)
