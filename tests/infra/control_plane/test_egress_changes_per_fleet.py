"""Egress policy changes on real Postgres are a fleet's own: two fleets on one database (a staging one beside
production) each list, read and lock only their own changes. Before, the list had no fleet filter (a console
showed, and capped away, another fleet's simulations) and a change was found by id alone, so one fleet's operator
could decide another fleet's change and push its module into their own OPA."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from control_plane.policy.egress_changes import EgressChanges

pytestmark = pytest.mark.infra


async def _simulated(changes: EgressChanges, candidate: str) -> str:
    return await changes.add_simulation(candidate=candidate, module="package moe.egress\n", in_force="sha256:0",
                                        days=1.0, summary={"requests": 0}, key_id="k", principal="p",
                                        reviewed_file=None)


async def test_a_fleet_lists_reads_and_locks_only_its_own_egress_changes(pool: asyncpg.Pool) -> None:
    ours, theirs = (EgressChanges(pool, f"fleet-{uuid.uuid4().hex[:8]}") for _ in range(2))
    mine = await _simulated(ours, "ours")
    other = await _simulated(theirs, "theirs")
    for _ in range(3):  # the other fleet is busier: its newer changes never push ours out of our list
        await _simulated(theirs, "theirs")
    listed = [c["id"] for c in await ours.listed(None, 1)]
    assert listed == [mine], listed
    assert {c["id"] for c in await theirs.listed("simulated", 50)} >= {other} and \
        mine not in {c["id"] for c in await theirs.listed(None, 50)}
    assert (await ours.get(mine) or {}).get("candidate") == "ours" and await ours.get(other) is None
    async with ours.locked(other) as (_, item):
        assert item is None  # a decision on another fleet's change finds nothing: the API's 404
    async with ours.locked(mine) as (_, item):
        assert item is not None and item["id"] == mine
