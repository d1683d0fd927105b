"""What graph-rag knows about a question's documents before it asks Chroma, in one Redis round trip:
the documents versions of the tenant and the shared scope (the gateway bumps a tenant's after every upload
and deletion, once Chroma has the change), whether the scope had documents at those versions (a marker
graph-rag writes after asking Chroma once), and the question's vector if the planner shared it.

A marker stamped with other versions says nothing: the versions are read before Chroma is asked, so a
document written after that question moves a version and the next lookup asks Chroma again. If the gateway
could not bump a version (Redis down), the marker is trusted until its TTL, as graph-rag's context cache is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

import moe_core.knowledge.question_vectors as question_vectors
from moe_core.knowledge.graph import visible_tenants
from moe_core.knowledge.memory.store import presence_key, version_key
from moe_core.llm.exact_cache import normalise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentScope:
    tenant: str
    tenants: list[str]  # the tenant's own and the shared documents
    versions: list[str]
    marker: str | None
    text: str  # what is embedded: the planner's normalised question
    vector: list[float] | None  # the planner's vector of `text`, if shared

    @property
    def tag(self) -> str:
        return ".".join(self.versions)

    def has_documents(self) -> bool | None:
        """True / False as found at these versions; None: not known (ask Chroma)."""
        if self.marker is None:
            return None
        stamp, _, has = self.marker.rpartition("=")
        return (has == "1") if stamp == self.tag else None


async def read_scope(redis: Redis, namespace: str, tenant: str, question: str) -> DocumentScope:
    tenants = visible_tenants(tenant)
    text = normalise(question)
    keys = [*(version_key(namespace, t) for t in tenants), presence_key(namespace, tenant),
            question_vectors.key(namespace, text)]
    *versions, marker, vector = await redis.mget(keys)
    return DocumentScope(tenant, tenants, [str(v or 0) for v in versions], str(marker) if marker else None, text,
                         question_vectors.decode(vector))


async def remember(redis: Redis, namespace: str, scope: DocumentScope, has: bool, ttl_s: int) -> None:
    """Note what Chroma said about the scope at the versions read before asking it (a shortcut: if Redis
    refuses, the next task asks Chroma again)."""
    try:
        await redis.set(presence_key(namespace, scope.tenant), f"{scope.tag}={int(has)}", ex=ttl_s)
    except RedisError as exc:
        log.warning("could not note whether tenant %s has documents: %s", scope.tenant, exc)
