"""The merger's first-answer-wins store is one Redis round trip (set-if-absent, leave the deadline watch,
read what stands), against the real Redis: the first answer stands for every later writer."""

from __future__ import annotations

from typing import Any

import pytest

from merger.state import MergerState
from moe_core.contracts import Answer, Draft, deadline_in
from moe_core.runtime.stores import redis_client
from tests.support.store_calls import own_ops

pytestmark = pytest.mark.infra  # real Redis (and Kafka where named)


def _fields(rid: str) -> dict[str, Any]:
    return {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(30), "mode": "moe-orchestrator"}


async def test_first_answer_and_draft_win_in_one_round_trip_each(infra: dict[str, str], namespace: str) -> None:
    redis = redis_client(infra["redis"])
    state = MergerState(redis, namespace, ttl_s=60)
    rid = f"r-{namespace}"
    try:
        await redis.zadd(state.deadlines, {rid: 1.0})
        with own_ops("redis") as ops:
            first = await state.put_answer(Answer(**_fields(rid), content="first"))
        assert sum(ops.values()) == 1
        second = await state.put_answer(Answer(**_fields(rid), content="second"))
        assert first.content == second.content == "first"
        assert (await state.answer(rid) or Answer(**_fields(rid))).content == "first"
        assert await redis.zscore(state.deadlines, rid) is None  # left the deadline watch
        draft = await state.put_draft(Draft(**_fields(rid), question="q", answer=first))
        other = Answer(**_fields(rid), content="other")
        again = await state.put_draft(Draft(**_fields(rid), question="q", answer=other))
        assert draft.answer.content == again.answer.content == "first"
    finally:
        await redis.delete(*[k async for k in redis.scan_iter(f"merger:{namespace}:*")] or ["-"])
        await redis.aclose()
