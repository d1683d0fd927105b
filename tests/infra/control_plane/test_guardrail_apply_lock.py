"""The guardrail rules' apply lock on real Postgres: one per fleet (namespace), not per tenant (every candidate is a
whole rules file: two tenants' approvals at once would undo each other's write), waited for at most
MOE_GUARDRAILS_APPLY_WAIT_S. A decision behind a held lock gets ApplyBusy naming the session that holds it, and
the API answers 503 `apply_busy` in its error format with nothing approved; another fleet on the database never
waits for it. Before, a held lock made every approval of every fleet wait for as long as it was held."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest

from control_plane.app import create_app as control_plane_app
from control_plane.policy.apply_lock import LOCK, ApplyBusy, lock_name
from control_plane.policy.guardrail_changes import APPLYING, GuardrailChanges, write_rules
from control_plane.settings import ControlPlaneSettings
from moe_core.access.keystore import KeyStore
from moe_core.llm.guardrails.book import rules_version
from tests.support.keys import person_key
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra


def _rules(tenant: str, word: str) -> str:
    return f"version: 1\ntenants:\n  {tenant}:\n    input:\n      - {{id: no-{word}, keywords: [{word}]}}\n"


async def _proposed(store: GuardrailChanges, tenant: str, before: str, after: str) -> str:
    sim = await store.add_simulation(candidate="sha256:" + uuid.uuid4().hex, rules=after, in_force=rules_version(
        before), days=1, tenants=[tenant], summary={}, actor_key="k-1", actor_principal="alice")
    return await store.propose(simulation_id=sim, changed={tenant: {"before": None, "after": {}}},
                               proposer_key="k-1", proposer_principal="alice", note="")


async def test_two_tenants_decisions_take_turns_within_a_fleet_and_another_fleet_never_waits(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    path, old = tmp_path / "guardrails.yaml", _rules("acme", "alpha")
    path.write_text(old)
    store, other = GuardrailChanges(pool, new_namespace("ga")), GuardrailChanges(pool, new_namespace("gb"))
    first, second = [await _proposed(store, t, old, _rules(t, "beta")) for t in ("acme", "globex")]
    elsewhere = await _proposed(other, "acme", old, _rules("acme", "gamma"))
    async with store.locked(first, None, 1.0) as lk:  # acme's approval, between its row lock and its write
        lk.after_commit(lambda: asyncio.to_thread(write_rules, path, _rules("acme", "beta")))
        with pytest.raises(ApplyBusy) as busy:  # globex's admin, same fleet: refused, not left waiting
            async with store.locked(second, None, 0.5):
                raise AssertionError("the lock was held")
        assert busy.value.holder["pid"] == lk.conn.get_server_pid()
        assert str(lk.conn.get_server_pid()) in str(busy.value)
        async with other.locked(elsewhere, None, 0.5) as theirs:  # another fleet on the database: its own lock
            assert theirs.item is not None and theirs.item["status"] == "pending"
        await lk.decide("applied", "k-2", "bob", "", path)
    assert path.read_text() == _rules("acme", "beta")
    assert (await store.proposal(second, None) or {})["status"] == "pending", "nothing decided behind the lock"
    async with store.locked(second, None, 0.5) as lk:  # let go: the next decision takes it at once
        assert lk.item is not None and lk.item["status"] == "pending"


async def test_an_approval_behind_a_held_lock_answers_503_apply_busy_naming_the_holder_and_approves_nothing(
        infra: dict[str, str], pool: asyncpg.Pool, tmp_path: Path) -> None:
    namespace, tenant = new_namespace("gapi"), new_namespace("gt")
    path, old, new = tmp_path / "guardrails.yaml", _rules(tenant, "alpha"), _rules(tenant, "delta")
    path.write_text(old)
    app = control_plane_app(ControlPlaneSettings(
        topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
        postgres_dsn=infra["postgres"], opa_url=infra["opa"], guardrails_file=str(path), guardrails_apply_wait_s=1))
    proposal = await _proposed(GuardrailChanges(pool, namespace), tenant, old, new)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        keys = await KeyStore.connect(infra["postgres"])
        stack.push_async_callback(keys.close)
        _, bob = await person_key(keys, "guardrails-bob", "admin", [tenant])
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://control-plane",
                                   headers={"Authorization": f"Bearer {bob}"}, timeout=60)
        stack.push_async_callback(client.aclose)
        approve = f"/v1/guardrails/proposals/{proposal}/approve"
        holder = await asyncpg.connect(infra["postgres"])
        pid = holder.get_server_pid()
        try:
            await holder.execute(LOCK, lock_name(APPLYING, namespace))  # a decision of this fleet that does not end
            busy = await client.post(approve, json={"note": "behind a held lock"})
        finally:
            await holder.close()
        assert busy.status_code == 503 and busy.headers.get("retry-after"), busy.text
        error = busy.json()["error"]
        assert (error["code"], error["type"]) == ("apply_busy", "server_error")
        assert f"'pid': {pid}" in error["message"] and "MOE_GUARDRAILS_APPLY_WAIT_S" in error["message"]
        assert (await client.get(f"/v1/guardrails/proposals/{proposal}")).json()["status"] == "pending"
        assert path.read_text() == old, "nothing put in force"
        applied = await client.post(approve, json={"note": "the lock let go"})
        assert applied.status_code == 200 and applied.json()["status"] == "applied", applied.text
        assert path.read_text() == new
