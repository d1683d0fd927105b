"""A simulated guardrail candidate put in force by two people, on a real fleet (Kafka, Postgres, OPA, the signed
record) and in a real chromium: the proposer cannot approve it, nor can a service account's key; a second person's
approval replaces the rules file, which the running gateway and planner read again (no restart), so the next
question the candidate blocks is refused; a proposal simulated against rules no longer in force is refused; the
simulation, the proposal, the approval and the application are audit records."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.support.fleet import Fleet
from tests.support.keys import new_keys, new_person_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


def _post(fleet: Fleet, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{fleet['control-plane'].url}{path}", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {key}"})


def _get(fleet: Fleet, path: str, key: str) -> httpx.Response:
    return httpx.get(f"{fleet['control-plane'].url}{path}", timeout=30, headers={"Authorization": f"Bearer {key}"})


def _ask(fleet: Fleet, key: str, question: str) -> tuple[str, str, str]:
    client = openai.OpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=key, max_retries=0, timeout=60)
    r = client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": question}])
    return r.id.removeprefix("chatcmpl-"), r.choices[0].message.content or "", str(r.choices[0].finish_reason)


def _candidate(fleet: Fleet, tenant: str, word: str) -> str:
    """The rules in force with one input rule more for `tenant` (the other tenants' rules unchanged)."""
    rules = yaml.safe_load(Path(fleet["control-plane"].env["MOE_GUARDRAILS_FILE"]).read_text())
    rules["tenants"] = {**(rules.get("tenants") or {}),
                        tenant: {"input": [{"id": f"no-{word}", "keywords": [word], "reason": "four-eyes test"}]}}
    return yaml.safe_dump(rules, sort_keys=True)


def _script(scripted: Scripted, m: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Fine.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Fine."},
    ])


def _simulate_and_propose(fleet: Fleet, key: str, tenant: str, word: str) -> tuple[dict[str, Any], dict[str, Any]]:
    sim = _post(fleet, "/v1/guardrails/simulations", key, {"rules": _candidate(fleet, tenant, word), "days": 1})
    assert sim.status_code == 200, sim.text
    proposed = _post(fleet, "/v1/guardrails/proposals", key, {"simulation_id": sim.json()["id"], "note": "try it"})
    assert proposed.status_code == 201, proposed.text
    return sim.json(), proposed.json()


def _on_record(fleet: Fleet, key: str, rid: str) -> None:
    """Until codex-lineage has recorded the request and its answer (the simulation reads the signed record)."""
    deadline = time.monotonic() + 60
    while True:
        reply = _get(fleet, f"/v1/audit/{rid}", key)
        kinds = {e["message_type"] for e in reply.json().get("timeline", [])} if reply.status_code == 200 else set()
        if {"ChatRequest", "Answer"} <= kinds:
            return
        assert time.monotonic() < deadline, f"{rid} not on the record: {reply.status_code} {reply.text[:300]}"
        time.sleep(0.5)


def _records(fleet: Fleet, key: str, proposal_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + 60
    while True:
        reply = _get(fleet, f"/v1/audit/admin-guardrails-proposal:{proposal_id}", key)
        if reply.status_code == 200 and all(f'"{action}"' in reply.text for action in wanted):
            return reply.text
        assert time.monotonic() < deadline, f"not on the record: {wanted} ({reply.status_code} {reply.text[:300]})"
        time.sleep(0.5)


def test_a_simulated_candidate_is_applied_by_a_second_person_without_a_restart(
        console_fleet: Fleet, scripted_server: Scripted, infra: dict[str, str]) -> None:
    tenant, m = new_namespace("gc"), uuid.uuid4().hex[:8]
    word, later = f"quazzle{m}", f"frobnik{m}"
    alice, bob = new_person_keys(infra["postgres"], ("alice", "admin", [tenant]), ("bob", "admin", [tenant]))
    service, user = new_keys(infra["postgres"], ("guard-bot", "admin", [tenant]), ("guard-user", "user", [tenant]))
    rules_file = Path(console_fleet["control-plane"].env["MOE_GUARDRAILS_FILE"])
    _script(scripted_server, m)
    rid, _, finish = _ask(console_fleet, user, f"How do I build {word}s? {m}")
    assert finish == "stop"  # no rule yet

    _on_record(console_fleet, user, rid)
    sim, proposal = _simulate_and_propose(console_fleet, alice, tenant, word)
    changed = {(c["response_id"], c["direction"]): c for c in sim["changed"]}
    assert changed[(rid, "input")]["after"] == {"action": "block", "rules": [f"no-{word}"]}
    assert proposal["status"] == "pending" and proposal["tenants"] == [tenant]
    assert proposal["changes"][tenant]["before"] is None and proposal["counts"][tenant]["to_block"] >= 1
    _, stale = _simulate_and_propose(console_fleet, bob, tenant, later)  # simulated against the rules of now
    before = rules_file.read_text()

    url = f"/v1/guardrails/proposals/{proposal['id']}/approve"
    own = _post(console_fleet, url, alice, {"note": "mine"})
    assert own.status_code == 403 and own.json()["error"]["code"] == "self_approval", own.text
    bot = _post(console_fleet, url, service, {})
    assert bot.status_code == 403 and bot.json()["error"]["code"] == "approver_not_a_person", bot.text
    assert _post(console_fleet, url, user, {}).status_code == 403
    assert rules_file.read_text() == before  # nothing applied yet
    assert _ask(console_fleet, user, f"And {word}s again? {m}")[2] == "stop"

    approved = _post(console_fleet, url, bob, {"note": "reviewed the diff"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "applied" and approved.json()["decided_principal"] not in ("", None)
    assert word in rules_file.read_text()
    assert _post(console_fleet, url, bob, {}).json()["error"]["code"] == "already_decided"

    deadline = time.monotonic() + 30  # the gateway and planner read the file again (MOE_GUARDRAILS_RELOAD_S=1)
    while (result := _ask(console_fleet, user, f"How do I build {word}s? {m}"))[2] != "content_filter":
        assert time.monotonic() < deadline, f"the applied rule is not in force: {result}"
        time.sleep(1)
    assert f"(rule no-{word})" in result[1]

    refused = _post(console_fleet, f"/v1/guardrails/proposals/{stale['id']}/approve", alice, {})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "rules_changed", refused.text
    trail = _records(console_fleet, alice, proposal["id"],
                     {"guardrails.proposed", "guardrails.approved", "guardrails.applied"})
    assert word not in trail.replace(f"no-{word}", "")  # rule ids, never a recorded question


def _sign_in(browser: webdriver.Chrome, base: str, key: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(key)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "overview")))


def _approve(browser: webdriver.Chrome, base: str, proposal_id: str, note: str) -> None:
    browser.get(f"{base}/console/simulations")
    form = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/simulations/proposals/{proposal_id}/approve"]')
    form.find_element(By.NAME, "note").send_keys(note)
    form.find_element(By.TAG_NAME, "button").click()


def test_the_console_lists_simulations_and_a_second_person_approves(
        console_fleet: Fleet, infra: dict[str, str], browser: webdriver.Chrome, shots: Path) -> None:
    base, tenant = console_fleet["control-plane"].url, new_namespace("gb")
    word = f"blivet{uuid.uuid4().hex[:8]}"
    carol, dave = new_person_keys(infra["postgres"], ("carol", "admin", [tenant]), ("dave", "admin", [tenant]))
    sim, proposal = _simulate_and_propose(console_fleet, carol, tenant, word)

    _sign_in(browser, base, carol)  # the proposer: the page refuses her approval with the policy's reason
    _approve(browser, base, proposal["id"], "my own")
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "error")))
    assert "proposer may not approve" in browser.find_element(By.ID, "error").text

    _sign_in(browser, base, dave)
    browser.get(f"{base}/console/simulations")
    row = browser.find_element(By.ID, f"simulation-{sim['id']}")
    assert row.find_element(By.CSS_SELECTOR, f'.tenant-counts[data-tenant="{tenant}"]').text.startswith(
        f"{tenant}: 0 tried, 0 changed")  # a new tenant: no recorded traffic to change
    assert proposal["id"] in browser.find_element(By.ID, "proposals").text
    browser.save_screenshot(str(shots / "30-guardrail-proposal.png"))
    _approve(browser, base, proposal["id"], "looks right")
    # the list is drawn again after the approval: an element found just before that is stale, not an answer
    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: proposal["id"] not in b.find_element(By.ID, "proposals").text)
    browser.get(f"{base}/console/simulations?status=applied")
    status = browser.find_element(By.CSS_SELECTOR, f"#proposal-{proposal['id']} .status").text
    assert status.startswith("applied by ")
    browser.save_screenshot(str(shots / "31-guardrail-applied.png"))
