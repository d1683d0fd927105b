"""A tenant's chain in an audit schema of a test's own, written the way codex-lineage writes it (the store as it
opens it, batches of expert results with their START and COMPLETE events): for the tests of the record's writes
and checkpoints on the real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from moe_core.audit.records import AuditRecord, from_kafka, message_types
from moe_core.audit.schema import quoted_schema
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.contracts import TaskResult, Topics, deadline_in

TOPICS = Topics.for_namespace("costs")
TENANT = "acme"


@pytest.fixture(name="audit_schema")  # tests/lineage/conftest.py offers it to the package
async def audit_schema_fixture(infra: dict[str, str]) -> AsyncIterator[str]:
    """An audit schema of the test's own, dropped afterwards."""
    name = f"audit_c_{uuid.uuid4().hex[:10]}"
    store = await AuditStore.connect(infra["postgres"], name)
    yield name
    await store.drop()
    await store.close()


async def store_for(dsn: str, schema: str, signer: Signer, statements: list[str] | None = None) -> AuditStore:
    """The store as codex-lineage opens it; `statements`: every statement its connections send, in order."""
    async def log(conn: asyncpg.Connection) -> None:
        if statements is not None:
            conn.add_query_logger(lambda q: statements.append(q.query))

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, init=log,
                                     server_settings={"search_path": f"{quoted_schema(schema)},public"})
    return AuditStore(pool, schema, signer)


def results(rid: str, first_offset: int, n: int) -> list[tuple[AuditRecord, list[dict[str, Any]]]]:
    """n results of a request, each with a START and a COMPLETE event."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    out = []
    for i in range(n):
        result = TaskResult(response_id=rid, tenant_id=TENANT, deadline_at=deadline_in(60), task_id=f"t{i}",
                            category="general", content=f"answer {first_offset + i}")
        record = from_kafka(TOPICS.results, 0, first_offset + i, now + i, rid.encode(),
                            result.model_dump_json().encode(), {"x-moe-producer": "expert-worker"},
                            message_types(TOPICS))
        assert record is not None
        run = str(uuid.uuid4())
        out.append((record, [{"run": {"runId": run}, "eventType": kind, "eventTime": f"2026-01-01T00:00:0{j}Z",
                              "job": {"namespace": "n", "name": "expert-worker.expert"}}
                             for j, kind in enumerate(("START", "COMPLETE"))]))
    return out
