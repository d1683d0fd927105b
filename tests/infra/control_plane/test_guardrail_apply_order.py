"""Applying an approved guardrail proposal, in a safe order on real Postgres (issue 50): the decision commits, then
the rules file is replaced. Postgres failing before the commit (its connection killed in the transaction) leaves
the rules file and the proposal as they were; a process that dies after the commit and before the write leaves an
applied proposal whose file the control plane writes when it starts (reconcile); a file changed since by other
means is left as it is."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

from control_plane.policy.guardrail_changes import GuardrailChanges, reconcile, write_rules
from control_plane.policy.proposals_api import reconcile_rules
from moe_core.llm.guardrails.book import rules_version

pytestmark = pytest.mark.infra


def _rules(word: str) -> str:
    return f"version: 1\ntenants:\n  acme:\n    input:\n      - {{id: no-{word}, keywords: [{word}]}}\n"


async def _proposed(store: GuardrailChanges, before: str, after: str) -> str:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    sim = await store.add_simulation(candidate="sha256:" + uuid.uuid4().hex, rules=after, in_force=rules_version(
        before), days=1, tenants=[tenant], summary={}, actor_key="k-1", actor_principal="alice")
    return await store.propose(simulation_id=sim, changed={tenant: {"before": None, "after": {}}},
                               proposer_key="k-1", proposer_principal="alice", note="")


async def _approve(store: GuardrailChanges, proposal_id: str, path: Path, text: str,
                   fail: asyncpg.Pool | None = None) -> None:
    async with store.locked(proposal_id, None, 30) as lk:
        lk.after_commit(lambda: asyncio.to_thread(write_rules, path, text))
        if fail is not None:  # Postgres fails within the transaction: the connection is killed
            await fail.execute("SELECT pg_terminate_backend($1)", lk.conn.get_server_pid())
        await lk.decide("applied", "k-2", "bob", "", path)


async def test_postgres_failing_before_the_commit_leaves_the_rules_and_the_proposal_as_they_were(
        infra: dict[str, str], tmp_path: Path) -> None:
    pool = await asyncpg.create_pool(infra["postgres"], min_size=1, max_size=3)
    assert pool is not None
    path, old, new = tmp_path / "guardrails.yaml", _rules("alpha"), _rules("beta")
    path.write_text(old)
    store = GuardrailChanges(pool)
    try:
        proposal = await _proposed(store, old, new)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await _approve(store, proposal, path, new, fail=pool)
        assert path.read_text() == old, "the rules are not in force while the proposal is not applied"
        assert (await store.proposal(proposal, None) or {})["status"] == "pending"
        await _approve(store, proposal, path, new)  # approved again: committed, then written
        assert path.read_text() == new and (await store.proposal(proposal, None) or {})["status"] == "applied"
    finally:
        await pool.close()


async def test_an_applied_proposal_whose_file_a_crash_left_unwritten_is_written_at_start(
        infra: dict[str, str], tmp_path: Path) -> None:
    pool = await asyncpg.create_pool(infra["postgres"], min_size=1, max_size=2)
    assert pool is not None
    path, old, new = tmp_path / "guardrails.yaml", _rules("gamma"), _rules("delta")
    path.write_text(old)
    store = GuardrailChanges(pool)
    try:
        proposal = await _proposed(store, old, new)
        async with store.locked(proposal, None, 30) as lk:  # the process dies after the commit, before the write
            await lk.decide("applied", "k-2", "bob", "", path)
        assert path.read_text() == old
        assert await store.last_applied(tmp_path / "another.yaml", proposal) is None  # another file's: not this one
        applied = await store.last_applied(path, proposal)
        assert applied is not None and applied["rules"] == new
        assert reconcile(path, applied) == "written" and path.read_text() == new
        assert reconcile(path, applied) == "in_force"  # once
        path.write_text(_rules("epsilon"))  # a reviewed commit changed the file since: it stays
        assert reconcile(path, applied) == "changed_since" and path.read_text() == _rules("epsilon")
        assert reconcile(path, None) == "none"
    finally:
        await pool.close()


async def test_the_start_up_repair_waits_for_no_decision_and_writes_nothing_under_its_lock(
        infra: dict[str, str], tmp_path: Path) -> None:
    """reconcile_rules takes the fleet's apply lock: while a decision holds it, a starting replica leaves the file
    to that decision (which writes its own once committed) instead of writing between its read and its write."""
    pool = await asyncpg.create_pool(infra["postgres"], min_size=1, max_size=3)
    assert pool is not None
    path, old, new = tmp_path / "guardrails.yaml", _rules("zeta"), _rules("eta")
    path.write_text(old)
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    store, settings = GuardrailChanges(pool, namespace), SimpleNamespace(guardrails_file=str(path), guardrails="")
    try:
        proposal = await _proposed(store, old, new)
        async with store.locked(proposal, None, 30) as lk:  # applied, its file left unwritten (a crash)
            await lk.decide("applied", "k-2", "bob", "", path)
        async with store.applying(30) as held:  # another replica's decision in progress
            assert held is not None
            assert await reconcile_rules(settings, store, bus=None) == "busy"  # type: ignore[arg-type]
            assert path.read_text() == old
        other_fleet = GuardrailChanges(pool, f"ns-{uuid.uuid4().hex[:8]}")
        async with other_fleet.applying(30):  # another fleet's decision does not hold this one's repair back
            path.write_text(new)  # (its outcome without a publish: the file already holds the applied rules)
            assert await reconcile_rules(settings, store, bus=None) == "in_force"  # type: ignore[arg-type]
    finally:
        await pool.close()
