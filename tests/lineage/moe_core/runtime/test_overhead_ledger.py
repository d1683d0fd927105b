"""The overhead ledger end to end (real broker, Postgres, codex-lineage; scripted models): a response says how much
of its time was the fleet's own (`x-moe-overhead-ms`, beside `x-moe-model-ms`, the model time it subtracted), a
stream says it in its final chunk, and the record holds each stage's handler, model and CPU time, from which an
auditor recomputes the model time the edge subtracted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import LineageFleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


def _script(scripted: Scripted, m: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain eclipses {m}"), ("science", f"Orbital nodes {m}"))},
        {"model": "expert-model", "contains": f"Explain eclipses {m}", "reply": "The moon covers the sun.\n"
         "CONFIDENCE: high"},
        {"model": "expert-model", "contains": f"Orbital nodes {m}", "reply": "Nodes are crossings.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Eclipses happen at the nodes."},
    ])


async def _costs(dsn: str, schema: str, rid: str) -> list[tuple[str, dict[str, Any]]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f'SELECT message_type, payload FROM "{schema}".audit_records WHERE response_id=$1 '
                                "ORDER BY seq", rid)
    finally:
        await conn.close()
    return [(r["message_type"], json.loads(r["payload"]) if isinstance(r["payload"], str) else dict(r["payload"]))
            for r in rows]


def test_a_reply_carries_the_fleets_own_time_and_the_record_each_stages(
        lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> None:
    tenant = new_namespace("ledger")
    [key] = new_keys(infra["postgres"], ("overhead-ledger", "user", [tenant]))
    m = f"L{uuid.uuid4().hex[:8]}"
    _script(scripted_server, m)
    started = time.perf_counter()
    reply = httpx.post(f"{lineage_fleet.gateway}/v1/chat/completions", timeout=60,
                       headers={"Authorization": f"Bearer {key}"},
                       json={"model": "moe-orchestrator", "messages": [{"role": "user", "content": f"Eclipses? {m}"}]})
    wall_ms = (time.perf_counter() - started) * 1000
    assert reply.status_code == 200, reply.text
    overhead, model = float(reply.headers["x-moe-overhead-ms"]), float(reply.headers["x-moe-model-ms"])
    assert overhead > 0 and model >= 0 and overhead + model <= wall_ms  # the edge's wall time, split in two
    rid = reply.json()["id"].removeprefix("chatcmpl-")
    lineage_fleet.wait_settled(tenant)

    recorded = asyncio.run(_costs(lineage_fleet.owner_dsn, lineage_fleet.schema, rid))
    costs = {(p["cost"]["stage"], p["cost"].get("task_id")): p["cost"] for t, p in recorded
             if t in ("Plan", "TaskResult", "Answer") and p.get("cost")}
    stages = sorted({stage for stage, _ in costs})
    assert stages == ["expert-worker", "merger", "planner"], costs
    tasks = [c for (stage, task), c in costs.items() if stage == "expert-worker"]
    assert len(tasks) == 2 and all(c["task_id"] for c in tasks)  # the two experts, side by side
    for cost in costs.values():  # every stage: its handler's time, its model calls within it, its CPU
        assert cost["model_calls"] >= 1 and cost["cpu_ms"] > 0, cost  # the merger may think, then judge
        assert cost["handler_ms"] >= cost["model_ms"] > 0, cost
    # the auditor's check: the model time the edge subtracted is the record's critical path (plan, the longer
    # expert, the merge)
    critical = costs[("planner", None)]["model_ms"] + max(c["model_ms"] for c in tasks) + \
        costs[("merger", None)]["model_ms"]
    assert round(critical, 1) == model
    [answer] = [p for t, p in recorded if t == "Answer"]
    assert {c["stage"] for c in answer["ledger"]} == {"planner", "expert-worker"}  # what the edge read it from


def test_a_stream_says_its_edge_time_first_and_the_whole_figure_last(
        lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> None:
    tenant = new_namespace("ledgers")
    [key] = new_keys(infra["postgres"], ("overhead-ledger-stream", "user", [tenant]))
    m = f"S{uuid.uuid4().hex[:8]}"
    _script(scripted_server, m)
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": f"Eclipses? {m}"}]}
    with httpx.stream("POST", f"{lineage_fleet.gateway}/v1/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {key}"}) as reply:
        assert reply.status_code == 200
        assert "x-moe-overhead-ms" not in reply.headers  # not known when the headers leave
        assert float(reply.headers["x-moe-edge-ms"]) > 0
        chunks = [json.loads(line[6:]) for line in reply.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
    final = next(c for c in reversed(chunks) if c.get("choices") and c["choices"][0].get("finish_reason"))
    meta = final["moe"]
    assert meta["overhead_ms"] > 0 and meta["model_ms"] > 0, meta  # planner, experts and judge were called
