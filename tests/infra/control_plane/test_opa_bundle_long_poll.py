"""OPA long-polling the control plane's signed bundle (control_plane.policy.bundle_server, opa_config's long_poll_s),
both real: a poll for the revision OPA holds is held until an approval commits a change (then answered with the new
bundle, never a 304 first) or the wait ends (304); the answers say OPA's long-polling content type; an OPA whose
periodic polls are a minute apart still loads an approved change within the approval's wait (20 s here), which it
could not without the held poll (its next poll would come 60-120 s later)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from control_plane.policy.bundle_server import LONG_POLL_TYPE
from control_plane.policy.egress_reviewed import reviewed_file
from moe_core.policy import PolicyClient
from tests.support.opa_bundles import Served, served_bundle

pytestmark = pytest.mark.infra
TOKEN = secrets.token_urlsafe(32)


def _approve(server: Served, note: str) -> str:
    """An approved egress change in force, as the approval commits it, and the control plane told (changed())."""
    reviewed = reviewed_file(server.policy_dir)
    assert reviewed is not None
    server.change = {"module": reviewed.text + f"\n# approved: {note}\n", "reviewed_file": reviewed.digest}
    server.bundles.changed()
    return note


async def test_a_held_poll_answers_with_the_changed_bundle_and_an_unchanged_one_with_304(tmp_path: Path) -> None:
    server = Served(tmp_path, TOKEN)
    resource = f"{server.url}/v1/opa/bundles/policies.tar.gz"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(timeout=40) as http:
            first = await http.get(resource, headers={**auth, "Prefer": "modes=snapshot,delta;wait=30"})
            assert first.status_code == 200 and first.headers["content-type"] == LONG_POLL_TYPE
            held = {**auth, "If-None-Match": first.headers["etag"], "Prefer": "modes=snapshot,delta;wait=30"}
            poll = asyncio.create_task(http.get(resource, headers=held))
            await asyncio.sleep(0.5)  # the poll is held (OPA holds that revision)
            assert not poll.done()
            _approve(server, "a change while OPA's poll is held")
            answer = await poll
            assert answer.status_code == 200 and answer.headers["content-type"] == LONG_POLL_TYPE
            assert answer.headers["etag"].strip('"') == (await server.bundles.current()).revision
            assert answer.headers["etag"] != first.headers["etag"]
            unchanged = await http.get(resource, headers={**held, "If-None-Match": answer.headers["etag"],
                                                          "Prefer": "modes=snapshot,delta;wait=1"})
            assert unchanged.status_code == 304 and unchanged.headers["content-type"] == LONG_POLL_TYPE
            plain = await http.get(resource, headers=auth)  # no wait asked: the bundle at once, as before
            assert plain.status_code == 200 and plain.headers["content-type"] == "application/gzip"
    finally:
        server.stop()


async def test_opa_long_polling_loads_an_approved_change_within_the_approvals_wait(tmp_path: Path) -> None:
    with served_bundle(tmp_path, TOKEN, min_delay_s=60, max_delay_s=120, long_poll_s=30) as (server, engine):
        client = PolicyClient(engine.url, token=TOKEN)
        try:
            await server.bundles.loaded(client, (await server.bundles.current()).revision)
            await asyncio.sleep(1)  # OPA's next poll is held by the control plane
            for note in ("first approval", "second approval"):
                _approve(server, note)
                revision = (await server.bundles.current()).revision
                await server.bundles.loaded(client, revision)  # MOE_OPA_BUNDLE_WAIT_S=20: PolicyUnavailable if not
                assert (await client.bundle_revision()) == revision
        finally:
            await client.close()
