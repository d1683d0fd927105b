"""The console's egress policy changes, in a real chromium on a real fleet (Kafka, Postgres, the shared OPA): a
candidate simulated and proposed by one operator is listed on the Policy simulations page with its counts; the
proposer's own approval is refused with the policy's reason; a second person rejects it. Nothing is pushed to the
shared OPA here (an approval that puts a candidate in force is tests/lineage/control_plane/
test_egress_policy_changes.py, over a private OPA)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.control_plane.test_guardrail_changes import _sign_in
from tests.support.fleet import Fleet
from tests.support.keys import new_person_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[3]


def _decide(browser: webdriver.Chrome, base: str, change: str, decision: str, note: str) -> None:
    browser.get(f"{base}/console/simulations")
    form = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/simulations/egress/{change}/{decision}"]')
    form.find_element(By.NAME, "note").send_keys(note)
    form.find_element(By.TAG_NAME, "button").click()


def test_the_console_lists_egress_changes_and_the_proposer_cannot_approve(
        console_fleet: Fleet, infra: dict[str, str], browser: webdriver.Chrome, shots: Path) -> None:
    base, tenant = console_fleet["control-plane"].url, new_namespace("eg")
    erin, frank = new_person_keys(infra["postgres"], ("erin", "operator", [tenant]), ("frank", "operator", [tenant]))
    module = (REPO / "policy" / "opa" / "egress.rego").read_text() + f"\n# console test {uuid.uuid4().hex}\n"
    sim = httpx.post(f"{base}/v1/egress/simulations", headers={"Authorization": f"Bearer {erin}"}, timeout=90,
                     json={"module": module, "days": 1, "tenant_id": tenant})
    assert sim.status_code == 200, sim.text
    change = sim.json()["id"]
    assert sim.json()["counts"]["changed"] == 0  # a new tenant: nothing recorded to change
    proposed = httpx.post(f"{base}/v1/egress/changes/{change}/propose", headers={"Authorization": f"Bearer {erin}"},
                          json={"note": "comment only"}, timeout=60)
    assert proposed.status_code == 200 and proposed.json()["status"] == "pending", proposed.text

    _sign_in(browser, base, erin)
    _decide(browser, base, change, "approve", "my own")
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "error")))
    assert "proposer may not approve" in browser.find_element(By.ID, "error").text

    _sign_in(browser, base, frank)
    browser.get(f"{base}/console/simulations")
    row = browser.find_element(By.ID, f"egress-{change}")
    assert row.find_element(By.CSS_SELECTOR, ".egress-counts").text.startswith("0 of 0 decisions")
    assert row.find_element(By.CSS_SELECTOR, ".status").text.startswith("pending")
    browser.save_screenshot(str(shots / "32-egress-change.png"))
    _decide(browser, base, change, "reject", "not needed")
    # the decision reloads the page: a row found before the reload is stale when read, so it is found again
    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: b.find_element(By.CSS_SELECTOR, f"#egress-{change} .status").text.startswith("rejected by "))
