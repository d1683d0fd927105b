"""What the chaos tests that follow an answer into the graph share: the scripted answer with its extraction, and
how much of it the graph holds."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from neo4j import AsyncGraphDatabase

from moe_core.knowledge.graph.vocab import RELATION_TYPES
from tests.e2e.helpers import plan_reply
from tests.support.chaos_infra import PrivateInfra

EXTRACTION = "You extract at most"  # graph-ingest's system prompt


def answered_and_extracted(m: str, reply: str, subject: str, *, held_ms: int = 0) -> list[dict[str, Any]]:
    """The scripted models for one answer (marker `m`, one general expert) and graph-ingest's extraction of it:
    one triple (`subject` a / b). held_ms: the first extraction call is held that long (the next one is not)."""
    triples = json.dumps({"triples": [{"subject": f"{subject}a {m}", "relation": RELATION_TYPES[0],
                                       "object": f"{subject}b {m}", "confidence": 0.9}]})
    extraction = {"system_contains": EXTRACTION, "contains": m, "reply": triples}
    held = [{**extraction, "delay_ms": held_ms, "times": 1}] if held_ms else []
    return [*held, extraction,
            {"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
            {"model": "expert-model", "contains": m, "reply": f"{reply}\nCONFIDENCE: high"},
            {"model": "judge-model", "contains": m, "reply": reply}]


async def ingested(infra: PrivateInfra, response_id: str) -> tuple[int, int]:
    """(relations asserted by this answer, the sum of their assertion counts)."""
    eps = infra.endpoints()
    auth = (eps["neo4j-user"], eps["neo4j-password"]) if eps["neo4j-password"] else None
    driver = AsyncGraphDatabase.driver(eps["neo4j"], auth=auth)
    try:
        records, _, _ = await driver.execute_query(
            "MATCH ()-[r]->() WHERE $rid IN r.asserted_by RETURN count(r) AS n, sum(r.assertions) AS a",
            rid=response_id)
        return int(records[0]["n"]), int(records[0]["a"] or 0)
    finally:
        await driver.close()


async def until(check: Any, what: str, timeout_s: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not (found := await check()):
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return found


async def nonzero(pending: Any) -> Any:
    found = await pending
    return found if found[0] else None
