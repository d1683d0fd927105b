"""The version of the policies in force (PolicyClient.version): OPA's GET /v1/policies is read each time, but digested
again only when its answer changed (issue 52: ~200 KB of module texts and syntax trees parsed before and after every
decision). An unchanged answer gives the version already computed; a replaced module gives the new digest at once,
the digest of exactly the modules then in force; a decision made after it carries it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from control_plane.policy.api import files_version
from moe_core.policy import PolicyClient
from moe_core.policy.opa import PolicyVersion, version_of
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


def _counting(reads: list[str]) -> httpx.AsyncClient:
    async def seen(request: httpx.Request) -> None:
        reads.append(f"{request.method} {request.url.path}")

    return httpx.AsyncClient(timeout=5, event_hooks={"request": [seen]})


async def test_a_decision_reads_the_version_once_its_read_after_is_the_next_ones_read_before(
        engine: opa.Engine) -> None:
    """OPA's list of modules (~200 KB of texts and syntax trees) was read before and after every decision; the read
    after one decision is the read before the next, so a run of decisions costs one read each (issue 52)."""
    calls: list[str] = []
    client = PolicyClient(engine.url, client=_counting(calls))
    try:
        decisions = [await client.decide("moe/knowledge/decision", IMPORT) for _ in range(3)]
        # the first decision is asked once more: first without a read before it, as under a signed bundle whose
        # answer names its revision (test_opa_bundle), then, the answer naming none, between two reads
        assert calls.count("GET /v1/policies") == 4 and calls.count("POST /v1/data/moe/knowledge/decision") == 4
        assert {d.version for d in decisions} == {files_version(engine.policy_dir)}
        many = await asyncio.gather(*(client.decide("moe/knowledge/decision", IMPORT) for _ in range(8)))
        assert {d.version for d in many} == {decisions[0].version}
        assert calls.count("GET /v1/policies") <= 4 + 8  # shared where a read began after a decision's answer
    finally:
        await client.close()


async def test_a_change_after_the_last_read_is_not_put_on_the_decision_made_under_it(engine: opa.Engine) -> None:
    """The read before may be an earlier decision's read after: a module replaced since (by another client) makes
    the read after differ, so the decision is asked again and carries the version it was made under."""
    client, other = PolicyClient(engine.url), PolicyClient(engine.url)
    try:
        first = await client.decide("moe/knowledge/decision", IMPORT)
        modules = await other.modules()
        [module_id] = [m for m in modules if m.endswith("knowledge.rego")]
        changed = await other.put_module(module_id, modules[module_id] + "\n# changed by another client\n")
        assert changed != first.version
        second = await client.decide("moe/knowledge/decision", IMPORT)
        assert second.version == changed
    finally:
        await client.close()
        await other.close()


class _Reads(PolicyClient):
    """A client that counts its reads of OPA's list and the most of them in flight at once."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads = self.in_flight = self.most = 0

    async def version(self) -> PolicyVersion:
        self.reads += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await super().version()
        finally:
            self.in_flight -= 1


async def test_decisions_at_once_never_have_two_reads_in_flight_and_each_read_after_follows_its_answer(
        engine: opa.Engine) -> None:
    """Each decision answered while a read was in flight started another read, so under load a client's reads
    overlapped, OPA slowed under them (~200 KB each) until reads took seconds and decisions timed out (a sustained
    bench cell: 47 of 189 requests refused). A decision answered during a read now waits for the next one, shared."""
    client = _Reads(engine.url)
    try:
        many = await asyncio.gather(*(client.decide("moe/knowledge/decision", IMPORT) for _ in range(40)))
        assert {d.version for d in many} == {files_version(engine.policy_dir)}
        assert client.most == 1
        assert client.reads < 40
        modules = await client.modules()
        [module_id] = [m for m in modules if m.endswith("knowledge.rego")]
        other = PolicyClient(engine.url)
        try:  # changed by another client while this one decides: every decision names the version it was made under
            changing = asyncio.ensure_future(other.put_module(module_id, modules[module_id] + "\n# changed\n"))
            more = await asyncio.gather(*(client.decide("moe/knowledge/decision", IMPORT) for _ in range(20)))
            changed = await changing
        finally:
            await other.close()
        assert {d.version for d in more} <= {many[0].version, changed}
        assert (await client.decide("moe/knowledge/decision", IMPORT)).version == changed
        assert client.most == 1
    finally:
        await client.close()
