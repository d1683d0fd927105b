"""Semantic entity search (GET /graph/search, the original's "semantic search in knowledge graph"): the query and
every visible entity's name and aliases are embedded (moe_core.knowledge.embeddings, all-MiniLM-L6-v2); an entity's
score
is the best cosine similarity of its texts (1.0 for an exact name or alias), entities below `min_similarity`
are left out, the rest come best first with their relations.

Only the entities of the key's visible tenants are read (the Cypher filters by tenant), so an entity of another
tenant is never a candidate. Vectors of entity texts are kept in the process (`EntityVectors`) and on the
entity itself (`search_texts`, `search_vectors`: its texts and their float32 vectors, base64 — the driver decodes
byte arrays slowly), written by the search that computed them: a name is embedded once (about 8 ms), another
process or replica reads it instead of running the model, and a changed name or alias list is embedded again."""

from __future__ import annotations

import base64
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from neo4j.exceptions import Neo4jError

from moe_core.knowledge.embeddings import DIMENSION
from moe_core.knowledge.graph.driver import GraphDB, GraphUnavailable
from moe_core.knowledge.graph.names import normalize
from moe_core.runtime.observability import ledger

log = logging.getLogger(__name__)

CANDIDATES = """
MATCH (e:Entity) WHERE e.tenant IN $tenants
RETURN e.uid AS uid, e.name AS name, coalesce(e.aliases, []) AS aliases, e.key AS key,
       coalesce(e.alias_keys, []) AS alias_keys, e.search_texts AS stored_texts, e.search_vectors AS stored
ORDER BY e.uid
LIMIT $max
"""

DETAILS = """
UNWIND range(0, size($uids) - 1) AS i
MATCH (e:Entity {uid: $uids[i]}) WHERE e.tenant IN $tenants
OPTIONAL MATCH (e)-[r:REL]-(o:Entity)
WHERE r.tenant IN $tenants AND o.tenant IN $tenants
WITH i, e, r, o
ORDER BY r.trust DESC, r.id
WITH i, e, collect(CASE WHEN r IS NULL THEN NULL ELSE {
    id: r.id, type: r.type, direction: CASE WHEN startNode(r) = e THEN 'out' ELSE 'in' END, other: o.name,
    trust: r.trust, verified: r.verified, flagged: r.flagged, source: r.source, version: r.version
}END)[..$max_relations] AS relations
RETURN e {.uid, .name, .type, .domain, .aliases, .tenant, .source} AS entity, relations
ORDER BY i
"""

STORE = """
UNWIND $rows AS row
MATCH (e:Entity {uid: row.uid})
SET e.search_texts = row.texts, e.search_vectors = row.vectors
"""

Embed = Callable[[list[str]], Any]


class EntityVectors:
    """Vectors of entity texts, kept (LRU, at most `size`) so a name is embedded once per process."""

    def __init__(self, embed: Embed, size: int = 50_000) -> None:
        self.embed = embed
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text (blocking: run it in a thread)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            fresh = np.asarray(self.embed(missing), dtype=np.float32)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._vectors[text] = vector
                    self._vectors.move_to_end(text)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        with self._lock:
            found = [self._vectors[t] for t in texts if t in self._vectors]
        if len(found) != len(texts):  # evicted meanwhile (more texts than the cache holds): embed them all
            return np.asarray(self.embed(list(texts)), dtype=np.float32)
        return np.stack(found) if found else np.zeros((0, DIMENSION), dtype=np.float32)


def rank(query: str, query_vector: np.ndarray, candidates: list[dict[str, Any]], vectors: np.ndarray,
         owners: list[int], min_similarity: float, limit: int) -> list[tuple[int, float]]:
    """(candidate index, score) of the best `limit` candidates at or above `min_similarity`, best first (a tie by
    name). `vectors[j]` belongs to candidate `owners[j]`; an exact name or alias scores 1.0."""
    scores = np.full(len(candidates), -1.0, dtype=np.float32)
    if len(owners):
        np.maximum.at(scores, np.asarray(owners), vectors @ query_vector)
    key = normalize(query)
    for i, c in enumerate(candidates):
        if key and (c["key"] == key or key in c["alias_keys"]):
            scores[i] = 1.0
    chosen = [i for i in range(len(candidates)) if scores[i] >= min_similarity]
    chosen.sort(key=lambda i: (-float(scores[i]), candidates[i]["name"]))
    return [(i, round(min(float(scores[i]), 1.0), 4)) for i in chosen[:limit]]


async def search(db: GraphDB, vectors: EntityVectors, tenants: list[str], query: str, *, limit: int = 10,
                 min_similarity: float = 0.55, max_candidates: int = 20_000,
                 max_relations: int = 20) -> list[dict[str, Any]]:
    """The entities of `tenants` closest in meaning to `query`, best first, each with its `score` and relations."""
    candidates = await db.read(CANDIDATES, tenants=tenants, max=max_candidates)
    if not candidates:
        return []
    own_texts = [[t for t in dict.fromkeys([c["name"], *c["aliases"]]) if t] for c in candidates]
    per = [_stored(c, own) for c, own in zip(candidates, own_texts, strict=True)]
    missing = [i for i, v in enumerate(per) if v is None]
    embedded = await ledger.to_thread(vectors.vectors, [query, *(t for i in missing for t in own_texts[i])])
    at, computed = 1, []
    for i in missing:
        fresh = embedded[at:at + len(own_texts[i])]
        at += len(fresh)
        per[i] = fresh
        packed = base64.b64encode(fresh.astype(np.float32).tobytes()).decode()
        computed.append({"uid": candidates[i]["uid"], "texts": own_texts[i], "vectors": packed})
    if computed:
        await _store(db, computed)
    matrix = np.concatenate([v for v in per if v is not None])
    owners = [i for i, own in enumerate(own_texts) for _ in own]
    best = rank(query, embedded[0], candidates, matrix, owners, min_similarity, limit)
    if not best:
        return []
    rows = await db.read(DETAILS, tenants=tenants, uids=[candidates[i]["uid"] for i, _ in best],
                         max_relations=max_relations)
    score = {candidates[i]["uid"]: s for i, s in best}
    return [{**r["entity"], "score": score[r["entity"]["uid"]], "relations": r["relations"]} for r in rows]



def _stored(candidate: dict[str, Any], texts: list[str]) -> np.ndarray | None:
    """The vectors kept on the entity, if they are those of its current texts."""
    stored = candidate.get("stored")
    if candidate.get("stored_texts") != texts or not isinstance(stored, str):
        return None
    raw = base64.b64decode(stored)
    if len(raw) != len(texts) * DIMENSION * 4:
        return None
    return np.frombuffer(raw, dtype=np.float32).reshape(len(texts), DIMENSION)


async def _store(db: GraphDB, rows: list[dict[str, Any]]) -> None:
    """Keep computed vectors on their entities; a failure only means the next search computes them again."""
    try:
        await db.write(STORE, rows=rows)
    except (Neo4jError, GraphUnavailable) as exc:
        log.warning("graph search: could not keep %d entities' vectors: %s", len(rows), exc)
