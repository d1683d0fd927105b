"""The console's Overview (its first page) and Requests page in a real headless chromium on a real fleet (scripted
models, prices set): after traffic of two tenants, a tenant admin's overview shows its tenant's requests and cost
today — the cost the usage API charged — and not the other tenant; the operator's shows both. The Requests page
filters by status and by model and shows each request's question, latency and tokens; a tenant admin cannot
list another tenant's requests (the API's 404)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import openai
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conftest import Scripted
from tests.console.conftest import HIDDEN_TENANT, ConsoleKeys
from tests.console.control_plane.test_console_journey import _reload_until, _sign_in, _text, _wait
from tests.e2e.helpers import plan_reply
from tests.support.fleet import Fleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


def _ask(fleet: Fleet, key: str, question: str) -> str | None:
    """The response id of an answered question; None when the fleet answered with an error."""
    client = openai.OpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=key, max_retries=0, timeout=60)
    try:
        response = client.chat.completions.create(model="moe-orchestrator",
                                                  messages=[{"role": "user", "content": question}])
    except openai.APIStatusError:
        return None
    return response.id.removeprefix("chatcmpl-")


def _row(browser: webdriver.Chrome, tenant: str, css: str) -> str:
    return _text(browser, f'#tenant-figures tr[data-tenant="{tenant}"] {css}')


def test_overview_and_requests_after_traffic(console_fleet: Fleet, console_keys: ConsoleKeys,
                                             scripted_server: Scripted, browser: webdriver.Chrome,
                                             shots: Path, infra: dict[str, str]) -> None:
    base = console_fleet["control-plane"].url
    tenant, other = new_namespace("ov"), HIDDEN_TENANT  # the other tenant's policy hides its questions
    admin, user, stranger = new_keys(infra["postgres"], ("overview-admin", "admin", [tenant]),
                                     ("overview-user", "user", [tenant]), ("other-user", "user", [other]))
    good, bad, theirs = (f"G{uuid.uuid4().hex[:8]}", f"B{uuid.uuid4().hex[:8]}", f"T{uuid.uuid4().hex[:8]}")
    scripted_server.script([
        {"model": "planner-model", "contains": good, "reply": plan_reply(("general", f"Capital of Chile {good}"))},
        {"model": "expert-model", "contains": good, "reply": "Santiago is the capital of Chile.\nCONFIDENCE: high"},
        {"model": "planner-model", "contains": bad, "reply": plan_reply(("general", f"Capital of Mars {bad}"))},
        {"model": "expert-model", "contains": bad, "status": 500},
        {"model": "planner-model", "contains": theirs, "reply": plan_reply(("general", f"Capital of Peru {theirs}"))},
        {"model": "expert-model", "contains": theirs, "reply": "Lima.\nCONFIDENCE: high"},
    ])
    _sign_in(browser, base, admin)  # before any traffic: an empty overview, not an error
    _wait(browser, lambda b: b.find_elements(By.ID, "overview"), "the empty overview")
    assert _text(browser, "#today-requests") == "0" and _text(browser, "#week-cost") == "0.0000"
    assert not browser.find_elements(By.CSS_SELECTOR, "#tenant-figures tr[data-tenant]")

    ok_id = _ask(console_fleet, user, f"What is the capital of Chile? {good}")
    assert ok_id is not None
    assert _ask(console_fleet, user, f"What is the capital of Mars? {bad}") is None  # no expert could answer
    their_id = _ask(console_fleet, stranger, f"What is the capital of Peru? {theirs}")
    assert their_id is not None

    def charged() -> float:
        usage = httpx.get(f"{base}/v1/usage", params={"tenant_id": tenant},
                          headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
        return float(usage["totals"]["cost"]) if usage["totals"]["requests"] == 2 else -1.0

    _sign_in(browser, base, admin)
    _wait(browser, lambda b: b.find_elements(By.ID, "overview"), "the overview, the console's first page")
    assert browser.current_url == f"{base}/console/overview"
    def shown() -> bool:
        """The page shows today's two requests and what the usage API charged for both: the requests are counted
        from the record and the cost from the usage records, each recorded on its own (both lingering consumers),
        so a page may show the two requests before their cost."""
        if not browser.find_elements(By.CSS_SELECTOR, f'tr[data-tenant="{tenant}"]'):
            return False
        cost = charged()
        return (_row(browser, tenant, ".today-requests") == "2" and cost > 0
                and _row(browser, tenant, ".today-cost") == f"{cost:.4f}")

    _reload_until(browser, f"{base}/console/overview", shown, "today's two requests and their cost")
    cost = charged()
    assert _row(browser, tenant, ".today-cost") == f"{cost:.4f}"
    assert _text(browser, "#today-requests") == "2" and _text(browser, "#today-errors") == "1"
    assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-tenant="{other}"]')  # only its own tenant
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-requests rect.bar")  # drawn from the fleet's data
    browser.save_screenshot(str(shots / "20-overview-tenant-admin.png"))

    browser.get(f"{base}/console/requests")
    rows = browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr[data-status]")
    assert len(rows) == 2
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("error")
    browser.find_element(By.ID, "apply-filters").click()
    _wait(browser, lambda b: "status=error" in b.current_url, "the status filter")
    rows = browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr[data-status]")
    assert [r.get_attribute("data-status") for r in rows] == ["error"]
    assert bad in rows[0].find_element(By.CSS_SELECTOR, ".question").text
    browser.save_screenshot(str(shots / "21-requests-errors.png"))

    browser.get(f"{base}/console/requests")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("ok")
    browser.find_element(By.ID, "filter-model").send_keys("expert-model")
    browser.find_element(By.ID, "apply-filters").click()
    _wait(browser, lambda b: "model=expert-model" in b.current_url, "the model filter")
    rows = browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr[data-status]")
    assert [r.get_attribute("data-response-id") for r in rows] == [ok_id]
    row = rows[0]
    assert f"What is the capital of Chile? {good}" in row.find_element(By.CSS_SELECTOR, ".question").text
    assert row.find_element(By.CSS_SELECTOR, ".latency").text.endswith(" s")
    assert int(row.find_element(By.CSS_SELECTOR, ".tokens").text) > 0
    assert "expert-model" in row.find_element(By.CSS_SELECTOR, ".models").text
    browser.save_screenshot(str(shots / "22-requests-filtered.png"))

    browser.get(f"{base}/console/requests?model=no-such-model")
    assert not browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr[data-status]")
    browser.get(f"{base}/console/requests?tenant={other}")  # another tenant's: the API's 404, not a leak
    assert theirs not in browser.page_source and "No requests of tenant" in _text(browser, "#refused")

    _sign_in(browser, base, console_keys.admin)  # the operator: the whole fleet, both tenants
    _wait(browser, lambda b: b.find_elements(By.ID, "overview"), "the operator's overview")
    assert _row(browser, tenant, ".today-requests") == "2" and _row(browser, other, ".today-requests") == "1"
    browser.save_screenshot(str(shots / "23-overview-operator.png"))

    browser.get(f"{base}/console/requests?tenant={other}")  # the other tenant's question: hidden by its policy
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-response-id="{their_id}"]')
    assert "hidden by the tenant's policy" in row.text and theirs not in browser.page_source
    browser.get(f"{base}/console/requests?q={theirs}")  # nor found by its words
    assert not browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr[data-status]")
    browser.get(f"{base}/console/requests?q={good}")  # the text filter finds a question that is not hidden
    found = browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr[data-status]")
    assert [r.get_attribute("data-response-id") for r in found] == [ok_id]

    pages: list[str] = []  # the API pages on: two requests of the tenant, one a page
    cursor = None
    while True:
        page = httpx.get(f"{base}/v1/requests", params={"tenant": tenant, "limit": 1, **(
            {"cursor": cursor} if cursor else {})}, headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
        pages += [r["response_id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(pages) == 2 and len(set(pages)) == 2 and ok_id in pages
