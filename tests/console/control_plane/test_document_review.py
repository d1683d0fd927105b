"""Tenant documents held for review in the browser: two medical documents a clinician's user key uploaded wait on
the Documents page with their approvals so far; a second admin person approves one with a note (now searchable:
two people approved it) and rejects the other with a reason (deleted)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import ConsoleKeys
from tests.support.fleet import Fleet
from tests.support.keys import new_keys, new_person_keys

pytestmark = pytest.mark.e2e
TEXT = "# {title}\n\nA patient with a Zelvora score of 5 or more gets the first antibiotic dose within one hour."


def test_a_second_person_approves_one_held_document_and_rejects_another(
        console_fleet: Fleet, console_keys: ConsoleKeys, browser: webdriver.Chrome, shots: Path) -> None:
    control_plane = console_fleet["control-plane"]
    base, tenant, tag = control_plane.url, console_keys.tenant, uuid.uuid4().hex[:6]
    dsn = control_plane.env["MOE_POSTGRES_DSN"]
    (clinician,) = new_keys(dsn, ("console-clinician", "user", [tenant]))
    ana, ben = new_person_keys(dsn, (f"Dr Ana {tag}", "admin", [tenant]), (f"Dr Ben {tag}", "admin", [tenant]))

    def call(method: str, path: str, key: str, **body: str) -> httpx.Response:
        return httpx.request(method, f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                             json=body or None)

    keep, drop = (call("POST", "/v1/memory/documents", clinician, text=TEXT.format(title=title)).json()
                  for title in (f"Sepsis bundle {tag}", f"Sepsis shortcut {tag}"))
    assert keep["status"] == drop["status"] == "pending_review", (keep, drop)
    try:
        first = call("POST", f"/v1/memory/documents/{keep['id']}/approve", ana, note="dose checked")
        assert first.status_code == 200 and first.json()["status"] == "pending_review", first.text

        browser.get(f"{base}/console/login")
        browser.find_element(By.ID, "api-key").send_keys(ben)
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "overview")))
        browser.get(f"{base}/console/documents")
        row = browser.find_element(By.ID, f"document-{keep['id']}")
        assert f"Sepsis bundle {tag}" in row.text and "medical" in row.text and "dose checked" in row.text
        counts = row.find_element(By.CLASS_NAME, "approvals")
        assert (counts.get_attribute("data-approvals"), counts.get_attribute("data-required")) == ("1", "2")
        assert f"Sepsis shortcut {tag}" in browser.find_element(By.ID, f"document-{drop['id']}").text
        browser.save_screenshot(str(shots / "30-documents-pending.png"))

        approve = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/documents/{keep["id"]}/approve"]')
        approve.find_element(By.NAME, "note").send_keys("second reviewer: matches the ward guideline")
        approve.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(lambda d: f"Sepsis bundle {tag}" not in d.page_source)
        reject = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/documents/{drop["id"]}/reject"]')
        reject.find_element(By.NAME, "note").send_keys("skips the lactate check")
        reject.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(lambda d: f"Sepsis shortcut {tag}" not in d.page_source)

        kept = call("GET", f"/v1/memory/documents/{keep['id']}", clinician).json()
        assert kept["status"] == "searchable", kept
        assert [a["note"] for a in kept["approvals"]] == ["dose checked", "second reviewer: matches the ward guideline"]
        assert call("GET", f"/v1/memory/documents/{drop['id']}", clinician).status_code == 404
        found = call("POST", "/v1/memory/search", clinician, query="When does a high Zelvora score get antibiotics?")
        assert keep["id"] in {h["document_id"] for h in found.json()["data"]}
    finally:
        for doc in (keep, drop):
            call("DELETE", f"/v1/memory/documents/{doc['id']}", clinician)
