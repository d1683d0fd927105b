"""Policy changes on real Postgres are a fleet's own: two fleets on one database (a staging one beside production)
each list, read and lock only their own egress policy changes and guardrail simulations and proposals. Before, the
lists had no fleet filter (a console showed, and capped away, another fleet's simulations) and a change was found by
id alone, so one fleet's operator could decide another fleet's change: push its egress module into their own OPA, or
write a guardrail candidate simulated on the other fleet's traffic into their own rules file."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from control_plane.policy.egress_changes import EgressChanges
from control_plane.policy.guardrail_changes import GuardrailChanges

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


async def _proposed(store: GuardrailChanges, tenant: str) -> tuple[str, str]:
    sim = await store.add_simulation(candidate="sha256:" + uuid.uuid4().hex, rules="version: 1\n", in_force="sha256:0",
                                     days=1, tenants=[tenant], summary={}, actor_key="k-1", actor_principal="alice")
    return sim, await store.propose(simulation_id=sim, changed={tenant: {"before": None, "after": {}}},
                                    proposer_key="k-1", proposer_principal="alice", note="")


async def test_a_fleet_lists_reads_and_locks_only_its_own_guardrail_simulations_and_proposals(
        pool: asyncpg.Pool) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ours, theirs = (GuardrailChanges(pool, f"fleet-{uuid.uuid4().hex[:8]}") for _ in range(2))
    sim, mine = await _proposed(ours, tenant)
    other_sim, other = await _proposed(theirs, tenant)  # the same tenant on both fleets: tenants are the database's
    for tenants in (None, [tenant]):  # the operator (every tenant) and the tenant's admin
        assert [p["id"] for p in await ours.proposals("pending", tenants, 50)] == [mine]
        assert [s["id"] for s in await ours.simulations(tenants, 50)] == [sim]
        assert await ours.proposal(other, tenants) is None and await ours.simulation(other_sim, tenants) is None
    assert (await theirs.proposal(other, None) or {}).get("id") == other
    async with ours.locked(other, None, 5) as lk:
        assert lk.item is None  # a decision on another fleet's proposal finds nothing: the API's 404
    async with ours.locked(mine, None, 5) as lk:
        assert lk.item is not None and lk.item["id"] == mine
