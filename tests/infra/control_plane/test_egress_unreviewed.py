"""With no approved egress change in force, the control plane's reconcile shows (and does not revert) an egress
module in the real OPA that is not the reviewed policy/opa/egress.rego: one put with OPA's token sets
moe_egress_policy_unreviewed to 1 (MoEEgressPolicyUnreviewed fires when that lasts 10 minutes), the reviewed
file back in force sets it to 0. No fleet, no Postgres: the comparison itself."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from control_plane.policy.egress_reconcile import EgressReconciler
from control_plane.policy.egress_simulation import egress_module
from control_plane.policy.settings import PolicySettings
from moe_core.policy import PolicyClient
from moe_core.runtime.observability.metrics import REGISTRY
from tests.support import opa

pytestmark = pytest.mark.infra
TOKEN = secrets.token_urlsafe(32)


def _unreviewed() -> float | None:
    return REGISTRY.get_sample_value("moe_egress_policy_unreviewed")


async def test_a_module_put_over_the_reviewed_file_is_shown_not_reverted(tmp_path: Path) -> None:
    with opa.private_engine(tmp_path, token=TOKEN) as running:
        client = PolicyClient(running.url, token=TOKEN)
        try:
            settings = PolicySettings(opa_url=running.url, opa_policy_dir=running.policy_dir)
            reconciler = EgressReconciler(settings, lambda: None, client, lambda event: None)  # type: ignore[arg-type,return-value]
            await reconciler._unreviewed()
            assert _unreviewed() == 0  # OPA holds the reviewed file
            modules = await client.modules()
            module_id = egress_module(modules)
            looser = modules[module_id] + '\n# put with the token, outside the four-eyes change\n'
            await client.put_module(module_id, looser)
            await reconciler._unreviewed()
            assert _unreviewed() == 1
            assert (await client.modules())[module_id] == looser  # shown, not reverted
            await client.put_module(module_id, (running.policy_dir / "egress.rego").read_text())
            await reconciler._unreviewed()
            assert _unreviewed() == 0
        finally:
            await client.close()
