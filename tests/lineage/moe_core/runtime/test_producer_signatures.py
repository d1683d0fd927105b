"""Who produced it, proven (issue 47, item 1), on the real broker with its ACLs and the real Postgres: the insider
trial's forge — the planner's Kafka credentials publishing an AuditEvent `knowledge_import_approved` with the header
`x-moe-producer: control-plane` — and its variants are refused by codex-lineage: not recorded, dead-lettered with the
reason, counted (moe_producer_signature_refused_total), and the audit API does not say `verified` for them. The same
event signed by the control plane's own key is recorded as before, naming its signer."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from moe_core.contracts import AuditEvent, Topics, deadline_in, headers
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.stage.producers import signer
from tests.lineage.conftest import Keys, LineageFleet, tenant_user
from tests.support.broker_principals import settings_of

pytestmark = pytest.mark.infra


def _event(tenant: str, rid: str) -> tuple[bytes, bytes]:
    event = AuditEvent(response_id=rid, tenant_id=tenant, deadline_at=deadline_in(3600), actor="key:forged",
                       action="knowledge_import_approved", subject=f"change_set:{rid}", reason="approved")
    return event.model_dump_json().encode(), rid.encode()


def _publish_as(fleet: LineageFleet, principal: str, records: list[tuple[bytes, bytes, dict[str, str]]]) -> None:
    """Raw records on the audit topic with `principal`'s own Kafka credentials (its ACLs allow the audit topic)."""
    env = {**os.environ, **fleet.env, **fleet.fleet.principals.env(principal)}
    topic = Topics.for_namespace(fleet.env["MOE_TOPIC_NAMESPACE"]).audit

    async def send() -> None:
        producer = AIOKafkaProducer(**client_kwargs(settings_of(env)), request_timeout_ms=10_000)
        await producer.start()
        try:
            for value, key, hdrs in records:
                await producer.send_and_wait(topic, value, key=key,
                                             headers=[(k, v.encode()) for k, v in hdrs.items()])
        finally:
            await producer.stop()

    asyncio.run(send())


def _signed(fleet: LineageFleet, service: str, as_name: str, value: bytes, key: bytes,
            producer: str) -> dict[str, str]:
    """Headers of an AuditEvent signed with `service`'s own key, naming `as_name` as the signer."""
    topic = Topics.for_namespace(fleet.env["MOE_TOPIC_NAMESPACE"]).audit
    own = signer(fleet.fleet.producer_keys, service)
    own.name = as_name
    return {headers.MESSAGE_TYPE: "AuditEvent", headers.PRODUCER: producer,
            **own.headers(topic, key, value, "AuditEvent")}


def _refused(fleet: LineageFleet) -> dict[str, float]:
    """codex-lineage's refusals on the audit topic by reason, from its /metrics."""
    text = httpx.get(f"{fleet.lineage}/metrics", timeout=30).text
    found = re.findall(r'moe_producer_signature_refused_total\{[^}]*reason="(\w+)"[^}]*topic="audit"[^}]*\} (\S+)',
                       text)
    return {reason: float(value) for reason, value in found}


def _verification(fleet: LineageFleet, key: str, rid: str, anchored: bool | None = True) -> dict[str, Any]:
    """The audit API's verification of `rid`, once a checkpoint covers it (anchored) or after 120 s; at once with
    `anchored=None`."""
    deadline = time.monotonic() + 120
    while True:
        resp = httpx.get(f"{fleet.control_plane}/v1/audit/{rid}", params={"verify": "true"},
                         headers={"Authorization": f"Bearer {key}"}, timeout=60)
        if resp.status_code == 429 and time.monotonic() < deadline:  # verifications are limited per key and minute
            time.sleep(float(resp.headers.get("retry-after") or 2))
            continue
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if anchored is None or body["verification"]["anchored"] == anchored or time.monotonic() > deadline:
            return body
        time.sleep(2)  # the next checkpoint comes within its interval (1 s in this fleet)


def test_a_forged_producer_is_refused_dead_lettered_counted_and_never_verified(lineage_fleet: LineageFleet,
                                                                                keys: Keys,
                                                                                infra: dict[str, str]) -> None:
    # a tenant of its own (another test of the tier tampers with the shared tenant's chain, which is then never
    # checkpointed again) and its own key (verifications are limited per key and minute)
    fleet, (tenant, reader) = lineage_fleet, tenant_user(infra, "forge-reader")
    before = _refused(fleet)
    rids = {case: f"forge-{case}-{uuid.uuid4().hex[:8]}" for case in
            ("header", "unsigned", "planner-key", "planner-signer", "genuine")}
    events = {case: _event(tenant, rid) for case, rid in rids.items()}
    claim = {headers.MESSAGE_TYPE: "AuditEvent", headers.PRODUCER: "control-plane"}
    _publish_as(fleet, "planner", [
        (*events["header"], claim),  # the trial's forge: the producer header says control-plane, nothing proves it
        (*events["unsigned"], {}),  # no header, no signature
        # signed with the planner's own key, claiming to be the control plane's signature
        (*events["planner-key"], _signed(fleet, "planner", "control-plane", *events["planner-key"], "control-plane")),
        # the planner's valid signature as the planner, under a producer header naming the control plane
        (*events["planner-signer"], _signed(fleet, "planner", "planner", *events["planner-signer"], "control-plane")),
    ])
    _publish_as(fleet, "control-plane",
                [(*events["genuine"], _signed(fleet, "control-plane", "control-plane", *events["genuine"],
                                              "control-plane"))])

    reasons = {"header": ("unsigned", "unsigned: no producer signature (x-moe-signer/x-moe-sig); it claims producer "
                                      "control-plane"),
               "unsigned": ("unsigned", "unsigned: no producer signature"),
               "planner-key": ("bad_signature", "the signature is not control-plane's over this message"),
               "planner-signer": ("producer_mismatch", "it claims producer control-plane but is signed as planner")}
    for case, (_, why) in reasons.items():
        recorded = fleet.records(rids[case], until="DeadLetter")
        assert [r["type"] for r in recorded] == ["DeadLetter"], (case, recorded)  # the forged event is not there
        letter = recorded[0]
        assert letter["consumer"] == "codex-lineage" and letter["error_type"] == "producer_signature", letter
        assert letter["reason"].startswith(f"producer signature refused: {why}"), (case, letter["reason"])
        assert "knowledge_import_approved" in letter["payload"]  # the dead letter names what was refused

    after = _refused(fleet)
    assert after.get("unsigned", 0) - before.get("unsigned", 0) == 2, (before, after)
    assert after.get("bad_signature", 0) - before.get("bad_signature", 0) == 1, (before, after)
    assert after.get("producer_mismatch", 0) - before.get("producer_mismatch", 0) == 1, (before, after)

    genuine = fleet.records(rids["genuine"], until="AuditEvent")
    assert [r["type"] for r in genuine] == ["AuditEvent"] and genuine[0]["action"] == "knowledge_import_approved"
    body = _verification(fleet, reader, rids["genuine"])
    assert [e["stage"] for e in body["timeline"]] == ["control-plane"], body["timeline"]  # the signer, proven
    assert body["verification"]["verified"] is True, body["verification"]

    for case in reasons:  # refused whether or not a checkpoint covers its dead letter yet
        body = _verification(fleet, reader, rids[case], anchored=None)
        verification = body["verification"]
        assert verification["verified"] is False, (case, verification)
        assert [e["stage"] for e in body["timeline"]] == ["codex-lineage"], body["timeline"]
        assert any("not recorded: producer signature refused" in p["problem"] for p in verification["problems"]), \
            verification
