"""graph-ingest as the runtime builds it, on the real Neo4j, OPA and Redis, its audit events kept (`AuditKept`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from graph_ingest.app import GraphIngest
from graph_ingest.settings import GraphIngestSettings
from moe_core.knowledge.graph import GraphDB
from moe_core.runtime.idempotency import Memo
from moe_core.runtime.stores import redis_client


class AuditKept:
    """The bus, as far as graph-ingest's audit events go: kept."""

    def __init__(self) -> None:
        self.topics, self.events = SimpleNamespace(audit="audit"), list[Any]()

    async def publish(self, message: Any, topic: str) -> None:
        self.events.append(message)


@pytest.fixture
async def ingest(infra: dict[str, str], graph_db: GraphDB) -> AsyncIterator[GraphIngest]:
    ns = f"gi{uuid.uuid4().hex[:6]}"
    settings = GraphIngestSettings(topic_namespace=ns, redis_url=infra["redis"], opa_url=infra["opa"],
                                   graph_trust_recompute_s=0)
    redis = redis_client(settings.redis_url)
    learner = GraphIngest(settings, AuditKept(), graph_db, None,  # type: ignore[arg-type]
                          Memo(redis, f"graph-ingest:triples:{ns}", 600))
    yield learner
    await learner.close()
    await redis.delete(*[k async for k in redis.scan_iter(f"*{ns}*")] or ["-"])
    await redis.aclose()
