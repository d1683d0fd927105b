"""The version of the policies in force (PolicyClient.version): OPA's GET /v1/policies is read each time, but digested
again only when its answer changed (issue 52: ~200 KB of module texts and syntax trees parsed before and after every
decision). An unchanged answer gives the version already computed; a replaced module gives the new digest at once,
the digest of exactly the modules then in force; a decision made after it carries it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.policy.api import files_version
from moe_core.policy import PolicyClient
from moe_core.policy.opa import version_of
from tests.support import opa

pytestmark = pytest.mark.infra
IMPORT = {"action": "knowledge.import", "tenant": "t1",
          "principal": {"id": "key:a", "key_id": "a", "role": "admin", "tenants": ["t1"]},
          "resource": {"domains": {"resolved": ["math"], "unresolved_labels": []}}}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[opa.Engine]:
    with opa.private_engine(tmp_path) as running:
        yield running


async def test_an_unchanged_answer_is_not_digested_again_and_a_change_is_seen_at_once(engine: opa.Engine) -> None:
    client = PolicyClient(engine.url)
    try:
        first = await client.version()
        assert first == files_version(engine.policy_dir)
        assert await client.version() is first  # the same answer: the version already computed
        modules = await client.modules()
        [module_id] = [m for m in modules if m.endswith("knowledge.rego")]
        changed = modules[module_id] + "\n# a reviewed change\n"
        after = await client.put_module(module_id, changed)
        assert after != first
        assert after == version_of((name, text.encode()) for name, text in (await client.modules()).items())
        decision = await client.decide("moe/knowledge/decision", IMPORT)
        assert decision.version == after
    finally:
        await client.close()
