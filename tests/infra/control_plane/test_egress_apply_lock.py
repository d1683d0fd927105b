"""The egress policy's apply lock on real Postgres: one per fleet (namespace), waited for at most
MOE_EGRESS_APPLY_WAIT_S (then ApplyBusy names the session holding it), and never held by a reconcile round longer
than that, even when OPA hangs (a CI run saw every approval of two fleets wait 90 s behind one holder)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from control_plane.policy.apply_lock import ApplyBusy
from control_plane.policy.egress_changes import EgressChanges
from control_plane.policy.egress_reconcile import EgressReconciler
from control_plane.policy.settings import PolicySettings
from moe_core.policy import PolicyClient
from moe_core.runtime.observability.metrics import REGISTRY

pytestmark = pytest.mark.infra


async def test_an_approval_waits_for_its_own_fleets_push_only_and_then_names_the_holder(pool: asyncpg.Pool) -> None:
    fleet, other = f"fleet-{uuid.uuid4().hex[:8]}", f"fleet-{uuid.uuid4().hex[:8]}"
    async with EgressChanges(pool, fleet).applying(None) as held:
        assert held is not None
        async with EgressChanges(pool, other).applying(0.5) as elsewhere:  # another fleet: not held up
            assert elsewhere is not None
        async with EgressChanges(pool, fleet).applying(None) as skipped:  # the reconcile's turn: skipped
            assert skipped is None
        with pytest.raises(ApplyBusy) as busy:
            async with EgressChanges(pool, fleet).applying(0.5):
                raise AssertionError("the lock was held")
        assert busy.value.holder["pid"] == held.get_server_pid()
        assert str(held.get_server_pid()) in str(busy.value)
    async with EgressChanges(pool, fleet).applying(0.5) as free:  # let go: the next push takes it at once
        assert free is not None


def _failed_timeouts() -> float:
    return REGISTRY.get_sample_value("moe_egress_policy_reconciled_total",
                                     {"action": "failed", "cause": "timeout"}) or 0.0


async def test_a_reconcile_round_that_hangs_at_opa_is_given_up_and_lets_the_lock_go(pool: asyncpg.Pool) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # accepts, reads, never answers: an OPA that hangs

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PolicyClient(f"http://127.0.0.1:{port}", timeout_s=30)  # its own timeout longer than the round's
    fleet = f"fleet-{uuid.uuid4().hex[:8]}"
    settings = PolicySettings(egress_apply_wait_s=1.0)
    reconciler = EgressReconciler(settings, lambda: pool, client, lambda event: None,  # type: ignore[arg-type,return-value]
                                  namespace=fleet)
    before = _failed_timeouts()
    try:
        assert await asyncio.wait_for(reconciler.once(), 20) == "failed"
        assert _failed_timeouts() == before + 1
        async with EgressChanges(pool, fleet).applying(0.5) as free:
            assert free is not None, "the round let the lock go"
    finally:
        await client.close()
        server.close()


async def test_each_fleet_keeps_one_change_in_force_of_its_own(pool: asyncpg.Pool) -> None:
    """Two fleets on one database (production and staging) each have their approved change in force; within one
    fleet a second row in force is refused (the approval's OUT_OF_FORCE takes the first out)."""
    fleets = [f"fleet-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    ids = [await EgressChanges(pool, fleet).add_simulation(
        candidate="sha256:" + uuid.uuid4().hex, module="package moe.egress", in_force="sha256:x", days=1,
        summary={}, key_id="k-1", principal="alice", reviewed_file=None) for fleet in (*fleets, fleets[0])]
    try:
        for change in ids[:2]:
            await pool.execute("UPDATE egress_policy_changes SET in_force = true WHERE id = $1", change)
        with pytest.raises(asyncpg.UniqueViolationError):
            await pool.execute("UPDATE egress_policy_changes SET in_force = true WHERE id = $1", ids[2])
        assert {r["namespace"] for r in await pool.fetch(
            "SELECT namespace FROM egress_policy_changes WHERE in_force AND id = ANY($1)", ids)} == set(fleets)
    finally:
        await pool.execute("DELETE FROM egress_policy_changes WHERE id = ANY($1)", ids)
