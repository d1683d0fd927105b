"""codex-lineage accepts OpenLineage events at POST /api/v1/lineage (Marquez's endpoint): openlineage-python's
own HttpTransport sends to it with an admin key; bad input gets a clear error in the service's envelope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import attr
import httpx
import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.generated.base import EventType, Job, Run, RunEvent, RunFacet

from codex_lineage.facets import schema_url
from moe_core.access.keystore import KeyStore
from moe_core.access.limits import Limits
from moe_core.access.principals import Principals
from tests.lineage.conftest import Keys, LineageFleet

pytestmark = pytest.mark.e2e


@attr.define
class MoeTenantRunFacet(RunFacet):
    """The fleet's tenant facet as an outside producer declares it with openlineage-python."""

    tenantId: str = attr.field(default="")
    responseId: str = attr.field(default="")

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MoeTenantRunFacet")


def _event(response_id: str, tenant: str = "outside") -> RunEvent:
    return RunEvent(eventType=EventType.START, eventTime=datetime.now(UTC).isoformat(),
                    run=Run(runId=str(uuid.uuid4()),
                            facets={"moe_tenant": MoeTenantRunFacet(tenantId=tenant, responseId=response_id)}),
                    job=Job(namespace="outside-etl", name="nightly.load"), producer="https://example.org/etl")


def _client(url: str, token: str) -> OpenLineageClient:
    return OpenLineageClient(config={"transport": {"type": "http", "url": url, "timeout": 10,
                                                   "auth": {"type": "api_key", "apiKey": token}}})


def test_openlineage_http_transport_sends_to_codex_lineage(lineage_fleet: LineageFleet, keys: Keys) -> None:
    rid = f"outside-{uuid.uuid4().hex}"
    event = _event(rid)
    _client(lineage_fleet.lineage, keys.admin).emit(event)
    stored = httpx.get(f"{lineage_fleet.lineage}/api/v1/lineage", params={"response_id": rid},
                       headers={"Authorization": f"Bearer {keys.admin}"}, timeout=10)
    assert stored.status_code == 200
    [body] = stored.json()["events"]
    assert body["run"]["runId"] == event.run.runId and body["job"]["name"] == "nightly.load"
    with pytest.raises(requests.HTTPError) as refused:  # a user key may not write lineage
        _client(lineage_fleet.lineage, keys.user).emit(_event(rid))
    assert refused.value.response is not None and refused.value.response.status_code == 403


def test_a_tenant_admin_writes_and_reads_only_its_own_tenants_lineage(lineage_fleet: LineageFleet,
                                                                      keys: Keys) -> None:
    """keys.tenant_admin administers `<tenant>-other`: it posts for that tenant, not for another one nor into
    another tenant's request (403), and another tenant's request reads like an unknown one (no events)."""
    own, theirs = f"own-{uuid.uuid4().hex}", f"theirs-{uuid.uuid4().hex}"
    _client(lineage_fleet.lineage, keys.tenant_admin).emit(_event(own, f"{keys.tenant}-other"))
    _client(lineage_fleet.lineage, keys.admin).emit(_event(theirs, keys.tenant))  # the operator: any tenant

    def read(rid: str, key: str) -> list[dict[str, object]]:
        reply = lineage_fleet.get("/api/v1/lineage", key, response_id=rid)
        assert reply.status_code == 200, reply.text
        return list(reply.json()["events"])

    assert len(read(own, keys.tenant_admin)) == 1 and len(read(theirs, keys.admin)) == 1
    assert read(theirs, keys.tenant_admin) == read(f"never-{uuid.uuid4().hex}", keys.tenant_admin) == []
    for event in (_event(f"new-{uuid.uuid4().hex}", keys.tenant), _event(theirs, f"{keys.tenant}-other")):
        with pytest.raises(requests.HTTPError) as refused:
            _client(lineage_fleet.lineage, keys.tenant_admin).emit(event)
        assert refused.value.response is not None and refused.value.response.status_code == 403
    assert len(read(theirs, keys.admin)) == 1  # nothing joined the other tenant's request


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not valid JSON"),
    (b'{"eventTime": "2026-01-01T00:00:00Z", "producer": "x", "job": {"namespace": "n", "name": "j"}, '
     b'"run": {"runId": "not-a-uuid"}}', "run.runId must be a UUID"),
    (b'{"eventTime": "yesterday", "producer": "x", "job": {"namespace": "n", "name": "j"}, '
     b'"run": {"runId": "8f4e6a3e-1c1b-4b52-9a44-4d1f2f0e7f10"}}', "eventTime"),
    (b"[1, 2]", "one OpenLineage RunEvent"),
])
def test_bad_events_are_refused_with_the_reason(lineage_fleet: LineageFleet, keys: Keys, body: bytes,
                                                reason: str) -> None:
    reply = httpx.post(f"{lineage_fleet.lineage}/api/v1/lineage", content=body,
                       headers={"Authorization": f"Bearer {keys.admin}", "Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reason in reply.json()["error"]["message"]


def test_the_lineage_endpoint_needs_a_key(lineage_fleet: LineageFleet) -> None:
    assert httpx.post(f"{lineage_fleet.lineage}/api/v1/lineage", content=b"{}").status_code == 401
    reply = httpx.get(f"{lineage_fleet.lineage}/api/v1/lineage", params={"response_id": "x"},
                      headers={"Authorization": "Bearer moe-wrong"})
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"


async def test_a_disabled_tenants_or_principals_admin_key_is_refused(lineage_fleet: LineageFleet,
                                                                     infra: dict[str, str]) -> None:
    """codex-lineage checks keys by the fleet's one rule (moe_core.access.auth): an operator key is refused once its
    tenant or its principal is disabled, and accepted again once enabled."""
    store = await KeyStore.connect(infra["postgres"], cache_ttl_s=0)
    try:
        tenant = f"lin-off-{uuid.uuid4().hex[:8]}"
        await store.create_tenant(tenant, "switched off", Limits())
        _, tenant_token = await store.create("lineage-off-tenant", "operator", [tenant])
        person = await Principals(store.pool).create("person", tenant, "Pat", email=f"pat-{tenant}@example.org")
        _, person_token = await store.create("lineage-off-person", "operator", [f"{tenant}-p"], principal_id=person.id)

        def status(token: str) -> tuple[int, str]:
            reply = httpx.get(f"{lineage_fleet.lineage}/api/v1/lineage", params={"response_id": "x"},
                              headers={"Authorization": f"Bearer {token}"})
            return reply.status_code, reply.json().get("error", {}).get("code", "") if reply.status_code >= 400 else ""

        assert status(tenant_token) == (200, "") and status(person_token) == (200, "")
        await store.update_tenant(tenant, disabled=True)
        await Principals(store.pool).set_disabled(person.id, True)
        assert status(tenant_token) == (401, "invalid_api_key")
        assert status(person_token) == (401, "invalid_api_key")
        await store.update_tenant(tenant, disabled=False)
        await Principals(store.pool).set_disabled(person.id, False)
        assert status(tenant_token) == (200, "") and status(person_token) == (200, "")
    finally:
        await store.close()
