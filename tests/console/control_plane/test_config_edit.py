"""The fleet configuration edited on the Configuration page in a real headless chromium, on a running fleet, with no
restart: the operator adds an inference server (a second scripted server) — four-eyes: it waits, its proposer may
not approve it, another person approves it in the console — and assigns the planner role to a model on it. The
next request's planner call goes to that server and model (the scripted servers record who was called); before the
change it went to the first server's planner-model. The API key typed in the form is never shown back, in the page
or the API. The audit events (who, before and after) show on the page once codex-lineage has recorded them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.conftest import FLEET_MODEL, Scripted
from tests.console.conftest import ConsoleKeys
from tests.console.control_plane.test_console_journey import _reload_until, _sign_in, _text, _wait
from tests.console.control_plane.test_requests_overview import _ask
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.fleet import Fleet
from tests.support.keys import new_keys, new_person_keys

pytestmark = pytest.mark.e2e
SERVER = "console-b"


def _submit(browser: webdriver.Chrome, form: str, fields: dict[str, str], button: str | None = None) -> None:
    for field, value in fields.items():
        box = browser.find_element(By.CSS_SELECTOR, f"#{form} [name={field}]")
        box.clear()
        box.send_keys(value)
    target = f"#{form} button[value={button}]" if button else f"#{form} button[type=submit]"
    browser.find_element(By.CSS_SELECTOR, target).click()


def _api(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{base}{path}", json=body, headers={"Authorization": f"Bearer {key}"},
                             timeout=30)
    assert response.status_code < 300, response.text
    return response.json()


def _restore(base: str, proposer: str, approver: str) -> None:
    """The environment's configuration again for the package's other tests (through the same API)."""
    changes = "/v1/admin/fleet-config/changes"
    _api(base, proposer, "POST", changes, {"section": "roles", "name": "planner", "value": None})
    shown = _api(base, proposer, "GET", "/v1/admin/fleet-config")
    if any(s["name"] == SERVER for s in shown["servers"]):
        made = _api(base, proposer, "POST", changes, {"section": "servers", "name": SERVER, "value": None})
        _api(base, approver, "POST", f"{changes}/{made['id']}/approve", {"note": "test clean-up"})


def test_a_server_and_the_planner_changed_in_the_console_serve_the_next_request(
        console_fleet: Fleet, console_keys: ConsoleKeys, scripted_server: Scripted, scripted_server_b: Scripted,
        browser: webdriver.Chrome, shots: Path, infra: dict[str, str]) -> None:
    base = console_fleet["control-plane"].url
    (user,) = new_keys(infra["postgres"], ("config-user", "user", [console_keys.tenant]))
    (approver,) = new_person_keys(infra["postgres"], ("config-approver", "operator", [console_keys.tenant]))
    before, after, secret = f"P{uuid.uuid4().hex[:8]}", f"Q{uuid.uuid4().hex[:8]}", f"sk-{uuid.uuid4().hex}"
    scripted_server.script([
        {"model": "planner-model", "contains": before, "reply": plan_reply(("general", f"Capital of Chile {before}"))},
        {"model": "expert-model", "contains": before, "reply": "Santiago.\nCONFIDENCE: high"},
        {"model": "expert-model", "contains": after, "reply": "Lima.\nCONFIDENCE: high"},
    ])
    scripted_server_b.script([{"model": FLEET_MODEL, "contains": after,
                               "reply": plan_reply(("general", f"Capital of Peru {after}"))}])
    assert _ask(console_fleet, user, f"What is the capital of Chile? {before}") is not None
    assert calls_for(scripted_server.calls("planner-model"), before)  # the environment's planner
    try:
        _change_in_the_console(browser, base, console_keys.admin, approver, scripted_server_b.url, secret, shots)
        assert _ask(console_fleet, user, f"What is the capital of Peru? {after}") is not None
        planned = calls_for(scripted_server_b.calls(FLEET_MODEL), after)
        assert planned, "the planner's call did not go to the server and model set in the console"
        assert not calls_for(scripted_server.calls("planner-model"), after)
        assert calls_for(scripted_server.calls("expert-model"), after)  # the experts' assignment is unchanged
        _reload_until(browser, f"{base}/console/config", lambda: "config:roles/planner" in _text(
            browser, "#config-recorded"), "the planner's change on the record")
        recorded = _text(browser, "#config-recorded")
        assert "config.applied" in recorded and "config.approved" in recorded and f"config:servers/{SERVER}" in recorded
        assert FLEET_MODEL + "@" + SERVER in recorded  # the after of the assignment, as recorded
        assert secret not in browser.page_source
        browser.save_screenshot(str(shots / "config-recorded.png"))
        shown = httpx.get(f"{base}/v1/admin/fleet-config", headers={"Authorization": f"Bearer {approver}"},
                          timeout=30)
        assert shown.status_code == 200 and secret not in shown.text
        assert next(s for s in shown.json()["servers"] if s["name"] == SERVER)["api_key"] == "***"
    finally:
        _restore(base, console_keys.admin, approver)


def _change_in_the_console(browser: webdriver.Chrome, base: str, proposer: str, approver: str, url: str,
                           secret: str, shots: Path) -> None:
    _sign_in(browser, base, proposer)
    _wait(browser, lambda b: b.find_elements(By.ID, "overview"), "the overview")
    browser.get(f"{base}/console/config")
    _submit(browser, "server-form", {"name": SERVER, "url": url, "models": FLEET_MODEL, "api_key": secret,
                                     "reason": "a second server"})
    _wait(browser, lambda b: "waiting for 1 approval" in b.page_source, "the new server waiting for approval")
    assert secret not in browser.page_source
    pending = browser.find_element(By.CSS_SELECTOR, "#config-changes tr.change-pending")
    assert f"servers/{SERVER}" in pending.text and '"api_key": "***"' in pending.text
    assert not browser.find_elements(By.ID, f"config-server-{SERVER}")  # not in force yet
    pending.find_element(By.XPATH, ".//button[text()='Approve']").click()  # its proposer may not approve it
    _wait(browser, lambda b: b.find_elements(By.ID, "error"), "the four-eyes refusal")
    assert "may not approve" in _text(browser, "#error")
    browser.save_screenshot(str(shots / "config-pending.png"))

    browser.delete_all_cookies()
    _sign_in(browser, base, approver)  # another person
    _wait(browser, lambda b: b.find_elements(By.ID, "overview"), "the overview")
    browser.get(f"{base}/console/config")
    browser.find_element(By.CSS_SELECTOR, "#config-changes tr.change-pending").find_element(
        By.XPATH, ".//button[text()='Approve']").click()
    _wait(browser, lambda b: b.find_elements(By.ID, f"config-server-{SERVER}"), "the approved server in force")
    assert "set (hidden)" in _text(browser, f"#config-server-{SERVER}")
    _submit(browser, "assignment-form", {"where": "roles:planner", "models": f"{FLEET_MODEL}@{SERVER}",
                                         "reason": "planner on the second server"}, "set")
    _wait(browser, lambda b: "roles/planner: applied as version" in b.page_source, "the assignment applied")
    row = _text(browser, "#config-role-planner")
    assert f"{FLEET_MODEL}@{SERVER}" in row and "console" in row
    assert secret not in browser.page_source
    browser.save_screenshot(str(shots / "config-changed.png"))
    browser.get(f"{base}/console/fleet")  # the Servers page lists the servers in force, the console's too
    _wait(browser, lambda b: b.find_elements(By.ID, "fleet") or "Inference servers" in b.page_source, "the page")
    assert SERVER in browser.page_source and url in browser.page_source and secret not in browser.page_source
