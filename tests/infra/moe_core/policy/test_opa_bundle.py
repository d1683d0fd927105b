"""Decisions under a signed bundle (moe_core.policy.bundle): OPA names the bundle's revision in each answer
(`?provenance=true`, read in the decision's own transaction), and the revision is the version of its modules
(`version_of`, the digest the list of modules would give), so a client reads OPA's list of modules (~200 KB of texts
and syntax trees, most of OPA's CPU per decision: issue 52) once per revision instead of once per decision."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.policy.opa import version_of
from tests.support import opa

pytestmark = pytest.mark.infra
PATH = "moe/knowledge/decision"
IMPORT = {"action": "knowledge.import", "tenant": "t1",
          "principal": {"id": "key:a", "key_id": "a", "role": "admin", "tenants": ["t1"]},
          "resource": {"domains": {"resolved": ["math"], "unresolved_labels": []}}}
MODULES = opa.policy_modules()
# the same modules with knowledge.rego asking 7 approvals of tenant t1's imports (2 before)
STRICTER = [(name, text + b"\nfloor contains 7 if input.tenant == \"t1\"\n" if name == "knowledge.rego" else text)
            for name, text in MODULES]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[opa.Engine, bytes]]:
    with opa.bundle_engine(tmp_path, MODULES) as running:
        yield running


def _counting(reads: list[str]) -> httpx.AsyncClient:
    async def seen(request: httpx.Request) -> None:
        reads.append(f"{request.method} {request.url.path}")

    return httpx.AsyncClient(timeout=5, event_hooks={"request": [seen]})


async def test_decisions_name_the_bundles_revision_and_read_the_modules_once(
        engine: tuple[opa.Engine, bytes]) -> None:
    running, _ = engine
    calls: list[str] = []
    client = PolicyClient(running.url, client=_counting(calls))
    try:
        decisions = [await client.decide(PATH, IMPORT) for _ in range(5)]
        many = await asyncio.gather(*(client.decide(PATH, IMPORT) for _ in range(20)))
        version = version_of(MODULES)  # what the list of modules gives, as without a bundle
        assert {d.version for d in [*decisions, *many]} == {version}
        assert version.modules == tuple(name for name, _ in MODULES)
        assert calls.count("GET /v1/policies") == 1  # the revision's first answer; was one per decision
        # the bundle owns every path: no module is put beside it (the token's holders cannot change what decides)
        with pytest.raises(PolicyUnavailable, match="owned by bundle"):
            await client.put_module("knowledge.rego", (MODULES[0][1]).decode())
    finally:
        await client.close()


async def test_a_bundle_loaded_during_decisions_never_gives_a_result_the_version_of_the_other(
        engine: tuple[opa.Engine, bytes]) -> None:
    """Each decision names the bundle that decided it: the result and the version belong together, whichever
    bundle was in force when OPA answered, while a new bundle is loaded under the decisions."""
    running, key = engine
    old, new = version_of(MODULES), version_of(STRICTER)
    client = PolicyClient(running.url)
    seen: list[tuple[str, int]] = []
    try:
        async def decide_until_new() -> None:
            for _ in range(2000):
                decision = await client.decide(PATH, IMPORT)
                seen.append((decision.version.digest, decision.result["approvals_required"]))
                if decision.version == new:
                    return
                await asyncio.sleep(0)

        deciding = [asyncio.ensure_future(decide_until_new()) for _ in range(4)]
        await asyncio.sleep(0.2)
        await asyncio.to_thread(opa.write_bundle, running.policy_dir, STRICTER, key)
        await asyncio.wait_for(asyncio.gather(*deciding), 60)
    finally:
        await client.close()
    assert set(seen) <= {(old.digest, 2), (new.digest, 7)}
    assert (old.digest, 2) in seen and (new.digest, 7) in seen


async def test_the_revision_of_a_bundle_that_leaves_paths_free_is_not_trusted(tmp_path: Path) -> None:
    """A bundle that owns only `moe` leaves room for a module put beside it, which its revision does not name: its
    decisions are read around as without a bundle, and a module put names its own version."""
    with opa.bundle_engine(tmp_path, MODULES, roots=("moe",)) as (running, _):
        calls: list[str] = []
        client = PolicyClient(running.url, client=_counting(calls))
        try:
            decisions = [await client.decide(PATH, IMPORT) for _ in range(3)]
            assert {d.version for d in decisions} == {version_of(MODULES)}
            assert calls.count("GET /v1/policies") >= 3  # one a decision at least: the reads name the version
            beside = "package other\n\nanything := true\n"
            after = await client.put_module("beside.rego", beside)
            assert after == version_of([*MODULES, ("beside.rego", beside.encode())])
            assert (await client.decide(PATH, IMPORT)).version == after
        finally:
            await client.close()
