"""OPA behind a token, as the chart runs it (opa.auth): the real `opa run --authentication=token
--authorization=basic` with policy/opa-system/authz.rego beside the decision policies. Without the token, or with
another one, nothing is read and no policy can be replaced (401); /health stays open for the probes; the fleet's
client (PolicyClient with MOE_OPA_TOKEN) gets its decisions, and the version it reports is that of the decision
policies alone (the authz module decides no write, so it is not part of the version the audit records)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from control_plane.policy.api import files_version
from moe_core.policy import PolicyClient, PolicyUnavailable
from tests.support import opa

pytestmark = pytest.mark.infra
TOKEN = secrets.token_urlsafe(32)
IMPORT = {"action": "knowledge.import", "tenant": "t1",
          "principal": {"id": "key:a", "key_id": "a", "role": "admin", "tenants": ["t1"]},
          "resource": {"domains": {"resolved": ["math"], "unresolved_labels": []}}}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[opa.Engine]:
    with opa.private_engine(tmp_path, token=TOKEN) as running:
        yield running


def test_only_the_token_reaches_the_api(engine: opa.Engine) -> None:
    assert httpx.get(f"{engine.url}/health", timeout=5).status_code == 200  # the kubelet's probes
    for headers in ({}, {"Authorization": "Bearer " + secrets.token_urlsafe(32)}, {"Authorization": TOKEN}):
        assert httpx.get(f"{engine.url}/v1/policies", headers=headers, timeout=5).status_code == 401, headers
        replaced = httpx.put(f"{engine.url}/v1/policies/moe/knowledge", headers=headers, timeout=5,
                             content=b"package moe.knowledge\nimport rego.v1\ndecision := {\"allow\": true}\n")
        assert replaced.status_code == 401, headers
        decided = httpx.post(f"{engine.url}/v1/data/moe/knowledge/decision", json={"input": IMPORT},
                             headers=headers, timeout=5)
        assert decided.status_code == 401, headers
    mine = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{engine.url}/v1/policies", headers=mine, timeout=5).status_code == 200


async def test_the_fleets_client_sends_the_token_and_decides(engine: opa.Engine) -> None:
    without = PolicyClient(engine.url)
    try:
        with pytest.raises(PolicyUnavailable, match="401"):
            await without.version()
    finally:
        await without.close()
    client = PolicyClient(engine.url, token=TOKEN)
    try:
        version = await client.version()
        assert version == files_version(engine.policy_dir), "the authz module is not part of the version"
        assert "authz.rego" not in version.modules
        decision = await client.decide("moe/knowledge/decision", IMPORT)
        assert "allow" in decision.result and decision.version == version
    finally:
        await client.close()
