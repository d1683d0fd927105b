"""An answer's triples written in one statement (GraphStore.write_many_counted_in; issue 52: four statements, each a
round trip and a statement's overhead in Neo4j, before): the missing entities made as store.CREATE_ENTITIES makes
them, the relations asserted as store.ASSERT_RELATIONS asserts them, the trust of each relation the statement creates
set from `row.trust` (what TrustPolicy gives a relation asserted now with its confidence and source: a created
relation has no other values; an existing one's trust is set after, from the values the statement returns), the
tenant's version moved as store.BUMP_VERSION moves it when a relation was newly asserted, and, when `$count`, the
tenant's size after all that, counted by the graph as measure.TENANT_SIZE_VERSIONED counts it (the drift checks'
"after"), or, when the version after the statement is `$since` (the version of the caller's count `$before`) moved
by this statement alone, that count plus the entities and relations the statement made: no other writer changed the
tenant in between (every writer of entities and relations moves the version), and a count costs Neo4j a db hit per
entity and relation of the tenant on every answer (issue 52). Cypher may not be built from text: the parts are
written out again, and tests/graph/moe_core/knowledge/test_write_many_in_step.py keeps them in step with the
statements they repeat."""

from __future__ import annotations

WRITE_MANY = """
CALL () {
  UNWIND $entities AS row
  OPTIONAL MATCH (x:Entity {uid: row.uid})
  RETURN count(x) AS existing
}
CALL () {
  UNWIND $entities AS row
  MERGE (e:Entity {uid: row.uid})
  ON CREATE SET e.name = row.name, e.key = row.key, e.tenant = $tenant, e.type = $type, e.domain = $domain,
                e.aliases = [], e.alias_keys = [], e.is_class = false, e.source = $source, e.created_at = $now
  WITH e
  MERGE (v:GraphVersion {tenant: e.tenant})
  SET v.lex = coalesce(v.lex, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
  SET e.lex = v.lex
}
CALL () {
  UNWIND $rows AS row
  MATCH (a:Entity {uid: row.subject}), (b:Entity {uid: row.object})
  MERGE (a)-[r:REL {id: row.id}]->(b)
  ON CREATE SET r.type = row.type, r.tenant = $tenant, r.source = $source, r.domain = row.domain,
                r.confidence = row.confidence, r.created_at = $now, r.asserted_at = $now, r.version = 0,
                r.assertions = 0, r.asserted_by = [], r.verified = false, r.flagged = false,
                r.expert = $expert, r.model = $model, r.response_id = $origin
  WITH row, r, r.version = 0 AS created, $origin IN r.asserted_by AS repeated
  SET r.version = CASE WHEN repeated THEN r.version ELSE r.version + 1 END,
      r.assertions = CASE WHEN repeated THEN r.assertions ELSE r.assertions + 1 END,
      r.asserted_by = CASE WHEN repeated THEN r.asserted_by ELSE (r.asserted_by + [$origin])[-$keep..] END,
      r.asserted_at = CASE WHEN repeated THEN r.asserted_at ELSE $now END,
      r.confidence = CASE WHEN r.confidence < row.confidence THEN row.confidence ELSE r.confidence END,
      r.imports = CASE WHEN $import_id IS NULL OR $import_id IN coalesce(r.imports, []) THEN coalesce(r.imports, [])
                       ELSE coalesce(r.imports, []) + [$import_id] END,
      r.documents = CASE WHEN $document IS NULL OR $document IN coalesce(r.documents, []) THEN coalesce(r.documents, [])
                         ELSE coalesce(r.documents, []) + [$document] END,
      r.learned_from = CASE WHEN $learned_from IS NULL OR $learned_from IN coalesce(r.learned_from, [])
                            THEN r.learned_from ELSE (coalesce(r.learned_from, []) + [$learned_from])[-$keep..] END
  SET r.trust = CASE WHEN created THEN row.trust ELSE r.trust END
  RETURN collect({id: r.id, subject: row.subject, object: row.object, created: created, repeated: repeated,
                  version: r.version, confidence: r.confidence, source: r.source, asserted_at: r.asserted_at,
                  verified: r.verified}) AS written
}
CALL (written) {
  WITH written WHERE any(w IN written WHERE NOT w.repeated)
  MERGE (v:GraphVersion {tenant: $tenant})
  SET v.n = coalesce(v.n, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
}
OPTIONAL MATCH (v:GraphVersion {tenant: $tenant})
WITH written, existing, [v.n, v.lex, v.epoch] AS version,
     [CASE WHEN any(w IN written WHERE NOT w.repeated) THEN coalesce($since[0], 0) + 1 ELSE $since[0] END,
      CASE WHEN size($entities) > 0 THEN coalesce($since[1], 0) + size($entities) ELSE $since[1] END,
      $since[2]] AS moved_by_this
WITH written, existing, version, $count AND coalesce(version = moved_by_this, false) AS known
OPTIONAL CALL (version, known) {
  WITH version WHERE $count AND NOT known
  CALL () { MATCH (e:Entity {tenant: $tenant}) RETURN count(e) AS entities }
  CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() RETURN count(r) AS relations }
  RETURN entities, relations
}
RETURN written, version, known,
       CASE WHEN known THEN $before.entities + size($entities) - existing ELSE entities END AS entities,
       CASE WHEN known THEN $before.relations + size([w IN written WHERE w.created]) ELSE relations END AS relations
"""
