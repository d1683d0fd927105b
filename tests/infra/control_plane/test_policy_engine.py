"""Open Policy Agent as the control plane uses it, on a private `opa run --watch` over a copy of policy/opa and the
real key store: a changed policy is in force without a restart; a policy that does not parse leaves the previous
one deciding, and GET /v1/admin/policy (and a metric) report the version in force and the load error; no OPA, or
no decision for the input, is PolicyUnavailable (the gate's 503), never an allow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from control_plane.policy.api import PolicyApi, files_version
from control_plane.policy.gate import PolicyGate
from control_plane.policy.settings import PolicySettings
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import REGISTRY
from moe_core.runtime.openai_error import install_error_handlers
from moe_core.runtime.settings import FleetSettings
from tests.support import opa
from tests.support.namespaces import new_namespace
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
IMPORT = {"action": "knowledge.import", "tenant": "t1",
          "principal": {"id": "key:a", "key_id": "a", "role": "admin", "tenants": ["t1"]},
          "resource": {"domains": {"resolved": ["medical"], "unresolved_labels": ["math"]}}}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[opa.Engine]:
    with opa.private_engine(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def postgres(endpoints: dict[str, str]) -> str:
    """Only the key store is needed here: Postgres (started if missing) with the fleet store's tables."""
    from fleetlib import api

    api.ensure_up(["postgres"])
    api.migrate()
    return api.endpoints()["postgres"]


@pytest.fixture
async def admin(postgres: str, engine: opa.Engine) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    store = await KeyStore.connect(postgres, cache_ttl_s=0)
    _, token = await store.create("policy-admin", "admin", ["policy-tests"])
    settings = PolicySettings(opa_url=engine.url, opa_policy_dir=engine.policy_dir, opa_binary=opa.binary())
    client = PolicyClient(engine.url)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(PolicyApi(settings, client, lambda: store).router)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp",
                             headers={"Authorization": f"Bearer {token}"})
    yield http, engine.url
    await http.aclose()
    await client.close()
    await store.close()


async def until(check: Any, what: str) -> Any:
    """`check()` once it returns something true (OPA reloads within milliseconds of a write; 20 s at most)."""
    for _ in range(200):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within 20 s: {what}")


async def test_a_change_is_in_force_without_a_restart_and_a_broken_one_is_refused(
        engine: opa.Engine, admin: tuple[httpx.AsyncClient, str]) -> None:
    http, _ = admin
    client = PolicyClient(engine.url)
    try:
        first = (await http.get("/v1/admin/policy")).json()
        on_disk = files_version(engine.policy_dir)
        assert on_disk is not None and (first["version"], first["in_force"]) == (on_disk.digest, True)
        decision = await client.decide("moe/knowledge/decision", IMPORT)
        assert decision.allowed and decision.result["approvals_required"] == 2
        assert decision.version.digest == first["version"] and decision.summary()["input"] == IMPORT

        domains = engine.policy_dir / "domains.rego"
        assert "protected_approvers := 2" in domains.read_text()  # the edit below changes the policy
        domains.write_text(domains.read_text().replace("protected_approvers := 2", "protected_approvers := 3"))

        async def three() -> bool:
            return (await client.decide("moe/knowledge/decision", IMPORT)).result["approvals_required"] == 3
        await until(three, "the changed policy deciding")
        second = (await http.get("/v1/admin/policy")).json()
        assert second["in_force"] and second["version"] != first["version"]
        assert second["version"] == files_version(engine.policy_dir).digest  # type: ignore[union-attr]

        knowledge = engine.policy_dir / "knowledge.rego"
        good = knowledge.read_text()
        knowledge.write_text(good + "\nbroken := {\n")

        async def refused() -> dict[str, Any] | None:
            body = (await http.get("/v1/admin/policy")).json()
            return body if not body["in_force"] else None
        status = await until(refused, "the broken file reported")
        assert status["version"] == second["version"]  # the previous policies are in force
        assert "knowledge.rego" in status["last_load_error"] and "rego_parse_error" in status["last_load_error"]
        assert REGISTRY.get_sample_value("moe_policy_files_not_in_force") == 1
        again = await client.decide("moe/knowledge/decision", IMPORT)
        assert again.result["approvals_required"] == 3 and again.version.digest == second["version"]
        assert "rego_parse_error" in engine.log.read_text()  # OPA's own log says so too

        knowledge.write_text(good)

        async def healed() -> bool:
            return bool((await http.get("/v1/admin/policy")).json()["in_force"])
        await until(healed, "the repaired file in force")
        assert REGISTRY.get_sample_value("moe_policy_files_not_in_force") == 0
    finally:
        await client.close()


async def test_no_engine_and_no_decision_are_unavailable_never_an_allow(engine: opa.Engine) -> None:
    gone = PolicyClient("http://127.0.0.1:9", timeout_s=1)
    with pytest.raises(PolicyUnavailable, match="unreachable"):
        await gone.decide("moe/knowledge/decision", IMPORT)
    await gone.close()
    client = PolicyClient(engine.url)
    try:
        with pytest.raises(PolicyUnavailable, match="no decision"):
            await client.decide("moe/nothing/here", IMPORT)
        with pytest.raises(PolicyUnavailable, match="no decision"):  # an input the rule has no value for
            await client.decide("moe/knowledge/decision", {**IMPORT, "action": "knowledge.sell"})
    finally:
        await client.close()


async def test_a_policy_change_is_on_the_record_beside_the_decisions_it_changed(engine: opa.Engine,
                                                                                 infra: dict[str, str]) -> None:
    """An insider who edits policy/opa on disk changes what the next decision says (OPA reloads it): the control
    plane's gate puts the change on the audit topic before the first decision under it (found in a trial: only
    the decisions' version hash showed it)."""
    settings = FleetSettings(topic_namespace=new_namespace("pol"), kafka_bootstrap=infra["kafka"],
                             service_name="control-plane")
    bus = Bus(settings)
    await bus.ensure_topics()
    await bus.broker.start()
    client = PolicyClient(engine.url)
    gate = PolicyGate(client, bus)
    key = ApiKey("k1", "policy-admin", "admin", ("t1",), principal_id="p-1", principal_kind="person")
    try:
        first = await gate.ask(key, "moe/knowledge/decision", "knowledge.import", "t1", IMPORT["resource"], "kcs-1")
        await gate.ask(key, "moe/knowledge/decision", "knowledge.import", "t1", IMPORT["resource"], "kcs-2")
        domains = engine.policy_dir / "domains.rego"
        assert "protected_approvers := 2" in domains.read_text()  # the edit below changes the policy
        domains.write_text(domains.read_text().replace("protected_approvers := 2", "protected_approvers := 3"))

        async def changed() -> bool:
            return (await client.decide("moe/knowledge/decision", IMPORT)).version.digest != first.version.digest
        await until(changed, "the changed policy deciding")
        second = await gate.ask(key, "moe/knowledge/decision", "knowledge.import", "t1", IMPORT["resource"], "kcs-3")
        assert second.result["approvals_required"] == 3
    finally:
        await client.close()
        await bus.close()
    topic = bus.topics.audit
    async with TopicReader(infra["kafka"], topic) as reader:
        decided = await reader.wait(topic, lambda e: e["action"] == "policy_decision", count=3)
        [record] = await reader.wait(topic, lambda e: e["action"] == "policy.version_changed", count=1)
    assert (record["details"]["from"], record["details"]["to"]) == (first.version.digest, second.version.digest)
    assert record["actor"] == "service:control-plane" and "domains.rego" in record["details"]["modules"]
    by_version = sorted((d["details"]["policy_version"], d["created_at"]) for d in decided)
    assert sorted(v for v, _ in by_version) == sorted([first.version.digest] * 2 + [second.version.digest])
    [under_new] = [at for v, at in by_version if v == second.version.digest]
    assert record["created_at"] <= under_new  # made before the first decision under the new policies
