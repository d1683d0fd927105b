"""The approved egress change in force under the signed bundle the control plane serves, on real Postgres and a real
OPA polling it: the bundle holds the change read from egress_policy_changes as soon as it is in force (nothing is
put with OPA's API); an approval whose wait ended before OPA loaded it is recorded by the reconcile once OPA holds
it (`loaded`: its policy version, the OPA that took it); a newer reviewed egress file supersedes the change and OPA
loads the files' bundle again, with nothing put either."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from control_plane.policy.egress_changes import EgressChanges, in_force_change
from control_plane.policy.egress_reconcile import EgressReconciler
from control_plane.policy.egress_reviewed import reviewed_file
from control_plane.policy.egress_simulation import egress_module
from moe_core.policy import PolicyClient
from moe_core.policy.opa import version_of
from moe_core.runtime.observability.metrics import REGISTRY
from tests.support import opa
from tests.support.opa_bundles import served_bundle

pytestmark = pytest.mark.infra
TOKEN = secrets.token_urlsafe(32)


def _counted(action: str, cause: str) -> float:
    return REGISTRY.get_sample_value("moe_egress_policy_reconciled_total", {"action": action, "cause": cause}) or 0.0


async def test_the_change_in_force_is_served_loaded_recorded_and_superseded_without_a_put(
        pool: asyncpg.Pool, infra: dict[str, str], tmp_path: Path) -> None:
    fleet = f"fleet-{uuid.uuid4().hex[:8]}"

    async def in_force() -> dict[str, Any] | None:  # on the server thread's loop: a pool of its own
        own = await asyncpg.create_pool(infra["postgres"], min_size=1, max_size=1)
        try:
            return await in_force_change(own, fleet)
        finally:
            await own.close()

    with served_bundle(tmp_path, TOKEN, in_force) as (server, engine):
        puts: list[str] = []

        async def seen(request: httpx.Request) -> None:
            if request.method == "PUT":
                puts.append(request.url.path)

        client = PolicyClient(engine.url, client=httpx.AsyncClient(
            timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}, event_hooks={"request": [seen]}))
        reviewed = reviewed_file(server.policy_dir)
        assert reviewed is not None
        module = reviewed.text + "\n# approved by two people\n"
        change = await EgressChanges(pool, fleet).add_simulation(
            candidate="sha256:" + uuid.uuid4().hex, module=module, in_force="sha256:x", days=1, summary={},
            key_id="k-1", principal="alice", reviewed_file=reviewed.digest)
        reconciler = EgressReconciler(server.settings, lambda: pool, client, lambda event: None,  # type: ignore[arg-type,return-value]
                                      namespace=fleet, bundles=server.bundles)
        try:
            files = (await server.bundles.current()).revision
            assert files == version_of(opa.policy_modules()).digest
            await server.bundles.loaded(client, files)
            assert await reconciler.once() is None  # no change in force: OPA holds the reviewed file

            await pool.execute("UPDATE egress_policy_changes SET status = 'applied', in_force = true WHERE id = $1",
                               change)  # approved; the approval's wait for OPA ended before OPA loaded it
            approved = (await server.bundles.current()).revision
            assert approved != files
            await server.bundles.loaded(client, approved)
            loaded = _counted("loaded", "not_pushed")
            assert await reconciler.once() == "loaded"
            assert _counted("loaded", "not_pushed") == loaded + 1
            row = await pool.fetchrow("SELECT applied_version, pushed_to FROM egress_policy_changes WHERE id = $1",
                                      change)
            assert row["applied_version"] == approved and row["pushed_to"] == await client.instance()
            assert await reconciler.once() is None  # recorded once

            (server.policy_dir / reviewed.path.name).write_text(reviewed.text + "\n# reviewed again\n")
            assert await reconciler.once() == "superseded"
            assert await in_force_change(pool, fleet) is None
            again = (await server.bundles.current()).revision
            await server.bundles.loaded(client, again)
            modules = await client.modules()
            assert modules[egress_module(modules)].endswith("# reviewed again\n")
            assert puts == []  # nothing was put with OPA's API
        finally:
            await client.close()
            await pool.execute("DELETE FROM egress_policy_changes WHERE id = $1", change)


async def test_a_change_opa_has_not_loaded_is_counted_waiting_and_nothing_is_put(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    """OPA holds another egress module than the change in force (here: the bundle it polls does not carry it, as
    while OPA cannot reach the control plane): the reconcile has nothing to put, it counts and logs the wait."""
    fleet = f"fleet-{uuid.uuid4().hex[:8]}"
    with served_bundle(tmp_path, TOKEN) as (server, engine):  # serves the files only
        client = PolicyClient(engine.url, token=TOKEN)
        reviewed = reviewed_file(server.policy_dir)
        assert reviewed is not None
        change = await EgressChanges(pool, fleet).add_simulation(
            candidate="sha256:" + uuid.uuid4().hex, module=reviewed.text + "\n# approved\n", in_force="sha256:x",
            days=1, summary={}, key_id="k-1", principal="alice", reviewed_file=reviewed.digest)
        await pool.execute("UPDATE egress_policy_changes SET status = 'applied', in_force = true WHERE id = $1",
                           change)
        reconciler = EgressReconciler(server.settings, lambda: pool, client, lambda event: None,  # type: ignore[arg-type,return-value]
                                      namespace=fleet, bundles=server.bundles)
        try:
            await server.bundles.loaded(client, (await server.bundles.current()).revision)
            waiting = _counted("waiting", "bundle_not_loaded")
            assert await reconciler.once() == "waiting"
            assert _counted("waiting", "bundle_not_loaded") == waiting + 1
            modules = await client.modules()
            assert modules[egress_module(modules)] == reviewed.text  # nothing put
            row = await pool.fetchrow("SELECT applied_version FROM egress_policy_changes WHERE id = $1", change)
            assert row["applied_version"] is None
        finally:
            await client.close()
            await pool.execute("DELETE FROM egress_policy_changes WHERE id = $1", change)
