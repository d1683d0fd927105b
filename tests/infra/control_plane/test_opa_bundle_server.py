"""OPA polling the control plane's signed policy bundle (control_plane.policy.bundle_server), both real: OPA run as
the chart runs it with opa.auth (token authentication, its authorization module coming in the bundle) loads the
policy files from the bundle; an approved egress change put in force is served as a new revision, which OPA loads and
names (the approval's wait); a newer reviewed egress file wins over it; OPA refuses a module put beside the bundle;
the bundle is served to OPA's token only, with 304 for the revision OPA holds. No fleet, no Postgres: the change in
force is given as the egress reconcile reads it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from control_plane.policy.bundle_server import revision_of
from control_plane.policy.egress_reviewed import reviewed_file
from control_plane.policy.egress_simulation import candidate_digest, egress_module
from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.policy.bundle import opa_config
from moe_core.policy.opa import version_of
from tests.support import opa
from tests.support.opa_bundles import Served, served_bundle

pytestmark = pytest.mark.infra
TOKEN = secrets.token_urlsafe(32)
PATH = "moe/knowledge/decision"
IMPORT = {"action": "knowledge.import", "tenant": "t1",
          "principal": {"id": "key:a", "key_id": "a", "role": "admin", "tenants": ["t1"]},
          "resource": {"domains": {"resolved": ["math"], "unresolved_labels": []}}}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, opa.Engine]]:
    with served_bundle(tmp_path, TOKEN) as running:
        yield running


async def test_opa_loads_the_served_bundle_and_an_approved_change_as_a_new_revision(
        served: tuple[Served, opa.Engine]) -> None:
    server, engine = served
    client = PolicyClient(engine.url, token=TOKEN)
    try:
        first = (await server.bundles.current()).revision
        assert first == version_of(opa.policy_modules()).digest  # the files' version, the authorization left out
        await server.bundles.loaded(client, first)
        decision = await client.decide(PATH, IMPORT)
        assert decision.allowed and decision.version.digest == first
        assert (await client.version()).digest == first  # the modules OPA lists are the revision's

        reviewed = reviewed_file(server.policy_dir)
        assert reviewed is not None
        module = reviewed.text + "\n# approved: a change in force\n"
        server.change = {"module": module, "reviewed_file": reviewed.digest}
        second = (await server.bundles.current()).revision
        assert second != first
        await server.bundles.loaded(client, second)  # OPA polled, verified and activated it
        modules = await client.modules()
        assert candidate_digest(modules[egress_module(modules)]) == candidate_digest(module)
        assert (await client.decide(PATH, IMPORT)).version.digest == second

        # under the bundle OPA takes no module from its API, even from the token's holder
        with pytest.raises(PolicyUnavailable, match="bundle"):
            await client.put_module(egress_module(modules), reviewed.text)

        # a newer reviewed file wins over the approved change (it was approved against the older one)
        (server.policy_dir / reviewed.path.name).write_text(reviewed.text + "\n# reviewed again\n")
        third = (await server.bundles.current()).revision
        await server.bundles.loaded(client, third)
        modules = await client.modules()
        assert modules[egress_module(modules)].endswith("# reviewed again\n")
    finally:
        await client.close()


async def test_the_bundle_is_served_to_opas_token_with_304_for_the_revision_held(
        served: tuple[Served, opa.Engine]) -> None:
    server, _ = served
    resource = f"{server.url}/v1/opa/bundles/policies.tar.gz"
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(resource)).status_code == 401
        assert (await http.get(resource, headers={"Authorization": "Bearer not-the-token"})).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        got = await http.get(resource, headers=auth)
        assert got.status_code == 200 and got.headers["etag"].strip('"') == (await server.bundles.current()).revision
        again = await http.get(resource, headers={**auth, "If-None-Match": got.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


async def test_an_approval_waiting_for_a_revision_opa_never_loads_fails_naming_what_it_holds(
        served: tuple[Served, opa.Engine]) -> None:
    server, engine = served
    server.settings.opa_bundle_wait_s = 1
    client = PolicyClient(engine.url, token=TOKEN)
    try:
        held = revision_of(opa.policy_modules())
        await server.bundles.loaded(client, held)
        with pytest.raises(PolicyUnavailable, match=f"did not load the policy bundle sha256:0+ .* holds {held}"):
            await server.bundles.loaded(client, "sha256:" + "0" * 64)
    finally:
        await client.close()


async def test_opa_persisting_the_bundle_starts_again_with_it_while_the_control_plane_is_down(tmp_path: Path) -> None:
    """As the local fleet runs it (fleetlib.opa_bundle: `persist`): the planner decides at start, so a restarted OPA
    must hold the policies before the control plane answers."""
    server = Served(tmp_path, TOKEN)
    (tmp_path / "engine").mkdir()
    config = opa_config(server.url, server.public, token=True, persist_dir=str(tmp_path / "persist"))
    try:
        with opa.polling_engine(tmp_path / "engine", config, TOKEN) as engine:
            client = PolicyClient(engine.url, token=TOKEN)
            revision = (await server.bundles.current()).revision
            await server.bundles.loaded(client, revision)
            server.stop()  # the control plane is down
            engine.restart()
            assert await client.bundle_revision() == revision
            assert (await client.decide(PATH, IMPORT)).version.digest == revision
            await client.close()
    finally:
        server.stop()
