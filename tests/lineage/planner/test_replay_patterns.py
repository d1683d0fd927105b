"""Learned planner patterns per tenant, and on the record (real broker, Redis, Postgres; scripted models): a tenant's
ratings (moe.feedback.v1) change its own planner prompt and not another tenant's; the hint the planner model saw is
recorded on the plan, so `replay rerun --as-recorded` reproduces a request after new ratings changed the tenant's
patterns, while `--today` plans with today's patterns."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from moe_core.contracts import Feedback, ModelUse, deadline_in
from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.lineage.conftest import LineageFleet, reexecution, tenant_user

pytestmark = pytest.mark.e2e
HINT = "Well-rated combinations (reuse one that fits): "
DATA_REASONING = [ModelUse(model="expert-model", category="reasoning"),  # not reviewed: this fleet has no critic
                  ModelUse(model="expert-model", category="data_analyst")]


def _script(scripted: Scripted, m: str) -> None:
    """The models: the planner plans data and reasoning tasks when its prompt names that learned combination,
    else astronomy; the experts and the judge answer by task."""
    scripted.script([
        {"model": "planner-model", "contains": m, "system_contains": "data_analyst+reasoning",
         "reply": plan_reply(("data_analyst", f"Eclipse tables {m}"), ("reasoning", f"Why the nodes matter {m}"))},
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain eclipses {m}"), ("science", f"Orbital nodes and eclipses {m}"))},
        {"model": "expert-model", "contains": m, "reply": "The moon covers the sun.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": f"Eclipses happen at the nodes ({m})."},
    ])


def _ask(fleet: LineageFleet, key: str, m: str) -> str:
    return fleet.ask(key, f"Why are there eclipses? {m}")[0]


def _planner_prompt(scripted: Scripted, m: str) -> str:
    calls = calls_for(scripted.calls("planner-model"), m)
    assert len(calls) == 1, calls
    return str(calls[0]["messages"][0]["content"])


def _rate(fleet: LineageFleet, redis_url: str, tenant: str, uses: list[ModelUse], times: int) -> None:
    """`times` ratings of 5 of other answers of the tenant (as the control plane publishes them), until the planner
    learned them."""
    ns = fleet.env["MOE_TOPIC_NAMESPACE"]
    pattern = "+".join(sorted(u.category for u in uses))

    async def learned() -> int:
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            return int(await client.hget(f"planner:success-count:{ns}:{tenant}", pattern) or 0)
        finally:
            await client.aclose()

    before = asyncio.run(learned())
    fleet.publish([(Feedback(response_id=f"rated-{uuid.uuid4().hex[:12]}", tenant_id=tenant,
                             deadline_at=deadline_in(60), rating=5, models_used=uses), "feedback")
                   for _ in range(times)], "control-plane")
    deadline = time.monotonic() + 60
    while asyncio.run(learned()) < before + times:
        assert time.monotonic() < deadline, f"the planner did not learn {pattern} for {tenant}"
        time.sleep(0.5)


def _plan(fleet: LineageFleet, rid: str) -> dict[str, Any]:
    """The request's recorded Plan (the recorder stores it shortly after it was published)."""
    async def fetch() -> dict[str, Any]:
        conn = await asyncpg.connect(fleet.owner_dsn)
        try:
            deadline = time.monotonic() + 60
            while (payload := await conn.fetchval(
                    f'SELECT payload FROM "{fleet.schema}".audit_log WHERE response_id=$1 AND kind=\'record\' '
                    "AND message_type='Plan' ORDER BY seq LIMIT 1", rid)) is None:
                assert time.monotonic() < deadline, f"no Plan recorded for {rid}"
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        return dict(json.loads(payload))

    return asyncio.run(fetch())


def test_patterns_are_a_tenants_own_and_a_replay_as_recorded_names_the_recorded_ones(
        lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> None:
    tenant, key = tenant_user(infra, "patterns-user")
    other, other_key = tenant_user(infra, "patterns-other")
    _rate(lineage_fleet, infra["redis"], tenant, [ModelUse(model="expert-model", category="math")], 1)

    m = f"P{uuid.uuid4().hex[:8]}"
    _script(scripted_server, m)
    rid = _ask(lineage_fleet, key, m)  # the recorded request: the planner's prompt names the tenant's one pattern
    assert _planner_prompt(scripted_server, m).endswith(HINT + "math.")
    lineage_fleet.wait_settled(tenant)
    assert _plan(lineage_fleet, rid)["learned_patterns"] == ["math"]

    # since then, the tenant's users rated two answers of analysts and reasoners well: the tenant's patterns changed...
    _rate(lineage_fleet, infra["redis"], tenant, DATA_REASONING, 2)
    now, elsewhere = f"P{uuid.uuid4().hex[:8]}", f"P{uuid.uuid4().hex[:8]}"
    _script(scripted_server, now)
    _ask(lineage_fleet, key, now)
    assert _planner_prompt(scripted_server, now).endswith(HINT + "data_analyst+reasoning, math.")
    # ... and no other tenant's: its planner prompt names no pattern at all
    _script(scripted_server, elsewhere)
    other_rid = _ask(lineage_fleet, other_key, elsewhere)
    assert HINT not in _planner_prompt(scripted_server, elsewhere)
    lineage_fleet.wait_settled(other)
    assert _plan(lineage_fleet, other_rid)["learned_patterns"] == []

    _script(scripted_server, m)
    done = lineage_fleet.rerun("--as-recorded", rid)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "  plan     same: 2 tasks" in lines, done.stdout
    assert lines[-1] == "REPRODUCED: the answer is byte for byte the recorded one", done.stdout
    assert calls_for(scripted_server.calls(), m) == []  # no model was asked
    _, replay_id = reexecution(lines)
    assert _plan(lineage_fleet, replay_id)["learned_patterns"] == ["math"]  # the recorded hint, not today's

    today = lineage_fleet.rerun("--today", rid)
    assert today.returncode == 0, today.stdout + today.stderr
    plan_line = next(ln for ln in today.stdout.splitlines() if ln.startswith("plan:"))
    assert plan_line != "plan:    same" and "data_analyst" in plan_line, today.stdout  # today's patterns
    today_id = re.search(r"replayed \S+ as (\S+)", today.stdout).group(1)  # type: ignore[union-attr]
    assert _plan(lineage_fleet, today_id)["learned_patterns"] == ["data_analyst+reasoning", "math"]
