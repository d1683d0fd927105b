"""The local fleet's OPA as `fleetctl up` starts it by default (fleetlib.opa.prepare, fleetlib.opa_bundle), real, on
a fresh data folder and with no control plane answering: it starts from the first signed bundle the fleet tool put
where it keeps its last one, so OPA is never without policy and the planner's first egress decision at start is
already made under the signed bundle (its version the bundle's revision, named by OPA, the policy files' version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moe_core.policy import PolicyClient
from moe_core.policy.egress import EgressPolicy, Target
from moe_core.policy.opa import version_of
from tests.support import opa
from tests.support.ports import free_port

pytestmark = pytest.mark.infra


async def test_a_fresh_local_fleets_opa_decides_under_the_signed_bundle_before_the_control_plane_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetlib import opa as local_opa
    from fleetlib import opa_bundle

    for name, path in {"KEY_DIR": tmp_path / "keys", "PRIVATE": tmp_path / "keys" / "signing.pem",
                       "PUBLIC": tmp_path / "keys" / "public.pem", "CONFIG": tmp_path / "opa" / "config.json",
                       "PERSIST": tmp_path / "opa" / "persist"}.items():
        monkeypatch.setattr(opa_bundle, name, path)
    monkeypatch.setattr(opa_bundle.config, "read_env_file", lambda: {})
    monkeypatch.delenv("MOE_OPA_BUNDLE", raising=False)  # the default
    closed, port = free_port(), free_port()  # the control plane's: nothing answers there; a private OPA's
    monkeypatch.setattr(opa_bundle.config, "port", lambda name: {"control-plane": closed, "opa": port}[name])
    argv = local_opa.prepare()
    assert argv[argv.index("--addr") + 1] == f"{opa_bundle.config.HOST}:{port}"
    argv[argv.index("--addr") + 1] = f"127.0.0.1:{port}"
    engine = opa.Engine(f"http://127.0.0.1:{port}", tmp_path, tmp_path / "opa.log", argv)
    engine.start()
    client = PolicyClient(engine.url)
    try:
        files = version_of(opa.policy_modules()).digest
        assert await client.bundle_revision() == files  # at /health 200: the seeded bundle, verified and active
        assert opa_bundle.opa_holds_bundle() is True  # so the control plane gets the signing key
        version, decisions = await EgressPolicy(client).decide("internal", [Target(
            role="planner", kind="model", server="local", model="m", region="eu", sovereignty="sovereign")])
        assert version.digest == files and len(decisions) == 1
        decision = await client.decide("moe/egress/decision", {"class": "internal", "kind": "model", "model": "m",
                                                               "server": {"name": "local", "region": "eu",
                                                                          "sovereignty": "sovereign"}})
        assert decision.version.digest == files  # named from the decision's provenance (the bundle's revision)
    finally:
        await client.close()
        engine.stop()
