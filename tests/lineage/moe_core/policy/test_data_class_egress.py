"""A request whose data class has no permitted server, through the audited fleet (issue 50): refused with the API's
error, no server called (the scripted server saw nothing of it), and its egress record — class, server, model,
region, outcome, rule, policy version — on the request's signed chain, verified by the audit API and in its evidence
bundle. An allowed request of a protected class carries its egress decision on the record too."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.lineage.conftest import Keys, LineageFleet, tenant_user

pytestmark = pytest.mark.e2e


def _rid(fleet: LineageFleet, marker: str, timeout_s: float = 60) -> str:
    """The response id of the request whose question holds `marker`, once codex-lineage has recorded it."""
    async def find() -> str:
        conn = await asyncpg.connect(fleet.owner_dsn)
        try:
            end = time.monotonic() + timeout_s
            while True:
                rid = await conn.fetchval(f'SELECT response_id FROM "{fleet.schema}".audit_log WHERE kind = '
                                          "'record' AND message_type = 'ChatRequest' AND payload LIKE $1",
                                          f"%{marker}%")
                if rid is not None:
                    return str(rid)
                assert time.monotonic() < end, f"no request with {marker} recorded"
                await asyncio.sleep(0.3)
        finally:
            await conn.close()

    return asyncio.run(find())


def _verified(fleet: LineageFleet, rid: str, key: str) -> dict[str, Any]:
    deadline, body = time.monotonic() + 90, {}
    while time.monotonic() < deadline:  # recorded, then anchored by a checkpoint within a few seconds
        body = httpx.get(f"{fleet.control_plane}/v1/audit/{rid}", params={"verify": "true"},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        if body.get("verification", {}).get("anchored") and "egress." in str(body):
            break
        time.sleep(0.5)
    return body


def test_a_refused_class_is_never_sent_and_its_egress_record_verifies(lineage_fleet: LineageFleet,
                                                                      scripted_server: Scripted, keys: Keys,
                                                                      infra: dict[str, str]) -> None:
    # a tenant of its own: another test of the tier tampers with the shared tenant's chain (never checkpointed again)
    _, user = tenant_user(infra, "egress-refused")
    m = f"C{uuid.uuid4().hex[:8]}"
    scripted_server.script([{"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))}])
    client = openai.OpenAI(base_url=f"{lineage_fleet.gateway}/v1", api_key=user, max_retries=0, timeout=60,
                           default_headers={"x-moe-data-class": "classified"})
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": f"Q {m}"}])
    assert refused.value.code == "data_class_forbidden"
    assert calls_for(scripted_server.calls(), m) == []  # no model was called for it

    rid = _rid(lineage_fleet, m)
    [record] = [r for r in lineage_fleet.records(rid, until="AuditEvent") if r["type"] == "AuditEvent"]
    assert record["action"] == "egress.refused" and record["actor"] == "service:planner"
    details = record["details"]
    assert details["data_class"] == "classified" and details["outcome"] == "deny"
    assert details["policy_version"].startswith("sha256:")
    planner = next(d for d in details["decisions"] if d["role"] == "planner")
    assert planner == {**planner, "server": "scripted", "model": "planner-model", "region": "local",
                       "sovereignty": "sovereign_cloud", "outcome": "deny", "rule": "classified-on-premises-only"}

    body = _verified(lineage_fleet, rid, user)
    assert body["verification"]["verified"] is True and body["verification"]["problems"] == [], body["verification"]
    assert "egress.refused" in str(body)
    bundle = lineage_fleet.get("/v1/evidence", keys.admin, response_id=rid)
    assert bundle.status_code == 200, bundle.text
    assert "egress.refused" in bundle.text and "classified-on-premises-only" in bundle.text


def test_an_allowed_personal_request_has_its_egress_decision_on_the_record(lineage_fleet: LineageFleet,
                                                                            scripted_server: Scripted,
                                                                            keys: Keys) -> None:
    m = f"P{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Fine.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Fine."}])
    client = openai.OpenAI(base_url=f"{lineage_fleet.gateway}/v1", api_key=keys.user, max_retries=0, timeout=60,
                           default_headers={"x-moe-data-class": "personal"})
    done = client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": f"Q {m}"}])
    rid = done.id.removeprefix("chatcmpl-")
    records = lineage_fleet.records(rid, until="Answer")
    [egress] = [r for r in records if r["type"] == "AuditEvent" and r["action"].startswith("egress.")]
    assert egress["action"] == "egress.decided" and egress["details"]["data_class"] == "personal"
    assert {d["outcome"] for d in egress["details"]["decisions"] if d["kind"] == "research"} == {"deny"}
    plan = next(r for r in records if r["type"] == "Plan")
    assert plan["data_class"] == "personal" and "research" not in plan["egress"]
    assert "scripted/expert-model" in plan["egress"]
