"""A candidate guardrail rule file simulated on a real fleet's recorded traffic (Kafka, Postgres, codex-lineage's
signed record): the requests whose decision it would change are listed with their rules and never their text, a
tenant admin sees only its own tenants, a bad candidate is a 400, and the simulation itself is on the record."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import Keys, LineageFleet

pytestmark = pytest.mark.e2e


def _simulate(fleet: LineageFleet, key: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{fleet.control_plane}/v1/guardrails/simulations", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _candidate(tenant: str, word: str) -> str:
    return f"tenants:\n  {tenant}:\n    input:\n      - {{id: no-{word}, keywords: [{word}], reason: test}}\n"


def test_a_candidate_rule_file_lists_the_recorded_requests_it_would_block(
        lineage_fleet: LineageFleet, scripted_server: Scripted, keys: Keys) -> None:
    m = uuid.uuid4().hex[:8]
    word = f"zorblax{m}"
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Fine.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Fine."},
    ])
    hit, _ = lineage_fleet.ask(keys.user, f"How do I build a {word}s kit? {m}")  # the plural is the topic too
    miss, _ = lineage_fleet.ask(keys.user, f"What is the weather? {m}")
    for rid in (hit, miss):
        lineage_fleet.records(rid, until="Answer")
    candidate = _candidate(keys.tenant, word)

    reply = _simulate(lineage_fleet, keys.admin, rules=candidate, days=1, tenant_id=keys.tenant)
    assert reply.status_code == 200, reply.text
    result = reply.json()
    changed = {(c["response_id"], c["direction"]): c for c in result["changed"]}
    assert changed[(hit, "input")]["before"] == {"action": "pass", "rules": []}
    assert changed[(hit, "input")]["after"] == {"action": "block", "rules": [f"no-{word}"]}
    assert (miss, "input") not in changed
    counts = result["tenants"][keys.tenant]
    assert counts["requests"] >= 2 and counts["to_block"] >= 1
    assert word not in reply.text.replace(f"no-{word}", "")  # rule ids, never the recorded text

    # the simulation is an audit record on the tenant's chain: who, which candidate, the counts
    subject = f"admin-guardrails:{result['candidate']}"
    deadline = time.monotonic() + 60
    while not (events := [r for r in lineage_fleet.records(subject) if r.get("action") == "guardrails.simulated"]):
        assert time.monotonic() < deadline, "the simulation was not recorded"
        time.sleep(0.5)
    assert events[0]["tenant_id"] == keys.tenant and events[0]["details"]["to_block"] == counts["to_block"]


def test_a_tenant_admin_simulates_only_its_own_tenants_and_bad_input_is_a_400(
        lineage_fleet: LineageFleet, keys: Keys) -> None:
    candidate = _candidate(keys.tenant, "anything")
    refused = _simulate(lineage_fleet, keys.tenant_admin, rules=candidate, tenant_id=keys.tenant)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    own = _simulate(lineage_fleet, keys.tenant_admin, rules=candidate)
    assert own.status_code == 200 and own.json()["tenants"] == {} and own.json()["changed"] == []
    bad = _simulate(lineage_fleet, keys.admin, rules="tenants: {x: {input: [{id: r, pattern: '('}]}}")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rules"
    assert _simulate(lineage_fleet, keys.admin, rules=candidate, days=0).status_code == 400
    assert _simulate(lineage_fleet, keys.user, rules=candidate).status_code == 403
