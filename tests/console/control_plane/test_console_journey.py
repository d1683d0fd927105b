"""The admin console in a real headless browser (Debian chromium + chromedriver, Selenium) on a real fleet:
sign in with an admin key, create a tenant and a key (its secret shown once), use the key from the official
openai SDK, see its usage and its request's audit timeline, revoke it, see it refused. Also: a user key
cannot sign in; a form posted without the CSRF token is refused and changes nothing. Screenshots are kept
under .data/artifacts/console/."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from redis.asyncio import Redis
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from expert_worker.scoring import ScoreBoard
from moe_core.contracts import Feedback, ModelUse, deadline_in
from tests.conftest import Scripted
from tests.console.conftest import ConsoleKeys
from tests.e2e.helpers import plan_reply
from tests.support.fleet import Fleet

pytestmark = pytest.mark.e2e
WAIT_S = 30


def _wait(browser: webdriver.Chrome, condition: Callable[[webdriver.Chrome], object], what: str) -> None:
    # htmx swaps fragments: an element read while it is being replaced is stale, so poll again
    WebDriverWait(browser, WAIT_S, poll_frequency=0.2,
                  ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
                  ).until(condition, message=f"waited for {what}")


def _text(browser: webdriver.Chrome, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def _sign_in(browser: webdriver.Chrome, base: str, key: str) -> None:
    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(key)
    browser.find_element(By.ID, "sign-in").click()


def _reload_until(browser: webdriver.Chrome, url: str, done: Callable[[], bool], what: str) -> None:
    """Reload a page until it shows what an asynchronous part of the fleet wrote (bounded)."""
    deadline = time.monotonic() + WAIT_S * 2
    while True:
        browser.get(url)
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the console never showed {what}")
        time.sleep(0.5)


def test_a_user_key_cannot_sign_in(console_fleet: Fleet, console_keys: ConsoleKeys, browser: webdriver.Chrome,
                                   shots: Path) -> None:
    base = console_fleet["control-plane"].url
    _sign_in(browser, base, console_keys.user)
    _wait(browser, ec.presence_of_element_located((By.ID, "error")), "the refusal")
    assert "needs an admin key" in _text(browser, "#error")
    assert browser.get_cookie("moe_console") is None
    browser.save_screenshot(str(shots / "01-user-key-refused.png"))
    browser.get(f"{base}/console/keys")  # still not signed in: back to the sign-in form
    assert browser.current_url.endswith("/console/login")


def test_sign_in_create_use_see_usage_revoke(console_fleet: Fleet, console_keys: ConsoleKeys, scripted_server: Scripted,
                                             browser: webdriver.Chrome, shots: Path) -> None:
    base = console_fleet["control-plane"].url
    _sign_in(browser, base, console_keys.admin)
    _wait(browser, ec.presence_of_element_located((By.ID, "overview")), "the overview (the first page)")
    browser.get(f"{base}/console/keys")
    _wait(browser, ec.presence_of_element_located((By.ID, "new-key")), "the keys page")
    cookie = browser.get_cookie("moe_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert console_keys.admin not in cookie["value"]  # the browser holds only the pad, never the key

    tenant = f"ct-{uuid.uuid4().hex[:8]}"
    browser.find_element(By.CSS_SELECTOR, "#new-tenant").find_element(By.XPATH, "..").find_element(
        By.TAG_NAME, "summary").click()
    form = browser.find_element(By.ID, "new-tenant")
    form.find_element(By.NAME, "id").send_keys(tenant)
    form.find_element(By.NAME, "name").send_keys("Console journey")
    form.find_element(By.NAME, "tokens_per_day").send_keys("100000")
    form.find_element(By.TAG_NAME, "button").click()
    _wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-tenant="{tenant}"]')), "the tenant")

    browser.find_element(By.ID, "key-name").send_keys("console journey key")
    Select(browser.find_element(By.ID, "key-tenant")).select_by_value(tenant)
    browser.find_element(By.ID, "new-key").find_element(By.NAME, "requests_per_minute").send_keys("60")
    browser.find_element(By.ID, "create-key").click()
    _wait(browser, ec.presence_of_element_located((By.ID, "secret")), "the new key's secret")
    secret = _text(browser, "#secret")
    assert secret
    browser.save_screenshot(str(shots / "02-key-created-secret-shown-once.png"))
    browser.find_element(By.ID, "to-key").click()
    _wait(browser, ec.presence_of_element_located((By.ID, "key-status")), "the key's page")
    key_url = browser.current_url
    assert secret not in browser.page_source  # shown once, never again
    browser.get(f"{base}/console/keys")
    assert secret not in browser.page_source
    browser.save_screenshot(str(shots / "02b-tenants-and-keys.png"))

    m = f"C{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital of Peru {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Lima is the capital of Peru.\nCONFIDENCE: high"},
    ])
    client = openai.OpenAI(base_url=f"{console_fleet['gateway'].url}/v1", api_key=secret, max_retries=0,
                           timeout=60)
    response = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"What is the capital of Peru? {m}"}])
    assert response.choices[0].message.content == "Lima is the capital of Peru."
    assert response.usage is not None

    _reload_until(browser, key_url, lambda: _text(browser, "#usage-requests") == "1", "the key's request")
    assert _text(browser, "#usage-prompt") == str(response.usage.prompt_tokens)
    assert _text(browser, "#usage-completion") == str(response.usage.completion_tokens)
    assert "requests per minute: 60" in browser.page_source
    browser.save_screenshot(str(shots / "03-key-usage.png"))

    rid = response.id.removeprefix("chatcmpl-")
    # the key's tenant is not the operator's own: it lists it by name (a cross-tenant read, on the record)
    _reload_until(browser, f"{base}/console/requests?tenant={tenant}", lambda: rid in browser.page_source,
                  "the recent request")
    browser.save_screenshot(str(shots / "04-recent-requests.png"))
    browser.find_element(By.LINK_TEXT, rid).click()
    _wait(browser, ec.presence_of_element_located((By.ID, "timeline")), "the audit timeline")
    _reload_until(browser, browser.current_url, lambda: _text(browser, "#verified") == "verified"
                  and "merger" in _text(browser, "#timeline"), "the whole verified timeline")
    browser.save_screenshot(str(shots / "05-audit-timeline.png"))

    browser.get(key_url)
    browser.find_element(By.ID, "revoke").click()
    WebDriverWait(browser, WAIT_S).until(ec.alert_is_present()).accept()  # hx-confirm
    _wait(browser, ec.text_to_be_present_in_element((By.ID, "key-status"), "revoked"), "the revoked status")
    browser.save_screenshot(str(shots / "06-key-revoked.png"))
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": "again"}])
    assert refused.value.code == "key_revoked"

    for page, name in (("fleet", "07-servers-experts"), ("quarantine", "08-quarantine"),
                       ("imports", "09-imports"), ("graph", "10-graph")):
        browser.get(f"{base}/console/{page}")
        assert browser.find_elements(By.ID, "sign-out"), f"{page}: not rendered for a signed-in admin"
        browser.save_screenshot(str(shots / f"{name}.png"))
    browser.get(f"{base}/console/fleet")
    assert "scripted" in _text(browser, "#servers")

    # what the system we replace shows its admins: maintenance runs, tool calls, the live configuration
    for page, table, name in (("healer", "#runs", "11-graph-maintenance"),
                              ("tool-calls", "#tool-calls", "12-tool-calls")):
        browser.get(f"{base}/console/{page}")
        assert browser.find_elements(By.CSS_SELECTOR, table), f"{page}: no table for a signed-in operator"
        browser.save_screenshot(str(shots / f"{name}.png"))
    _reload_until(browser, f"{base}/console/config", lambda: "merger" in _text(browser, "#service-versions"),
                  "what the merger last ran with")
    assert "sha256:" in _text(browser, "#service-versions") and "general" in _text(browser, "#templates")
    assert "***" in _text(browser, "#settings")  # the store passwords, never their values
    browser.save_screenshot(str(shots / "13-configuration.png"))


def test_a_form_without_its_csrf_token_is_refused(console_fleet: Fleet, console_keys: ConsoleKeys,
                                                  browser: webdriver.Chrome, shots: Path) -> None:
    base = console_fleet["control-plane"].url
    _sign_in(browser, base, console_keys.admin)
    _wait(browser, ec.presence_of_element_located((By.ID, "overview")), "the overview (the first page)")
    tenant = f"csrf-{uuid.uuid4().hex[:8]}"
    # What a forged form looks like: the session cookie rides along, the token does not.
    browser.execute_script("""
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/console/tenants';
        const field = document.createElement('input'); field.name = 'id'; field.value = arguments[0];
        form.appendChild(field); document.body.appendChild(form); form.submit();""", tenant)
    _wait(browser, ec.presence_of_element_located((By.ID, "refused")), "the refusal")
    assert "CSRF token is missing or wrong" in _text(browser, "#refused")
    browser.save_screenshot(str(shots / "11-csrf-refused.png"))
    tenants = httpx.get(f"{base}/v1/admin/tenants", headers={"Authorization": f"Bearer {console_keys.admin}"})
    assert tenant not in {t["id"] for t in tenants.json()["data"]}  # nothing was created


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/console"), ("GET", "/console/overview"), ("GET", "/console/keys"), ("GET", "/console/keys/k1"),
    ("POST", "/console/keys"),
    ("POST", "/console/keys/k1/revoke"), ("POST", "/console/keys/k1/rotate"), ("POST", "/console/keys/k1/limits"),
    ("POST", "/console/tenants"), ("POST", "/console/tenants/t1"), ("GET", "/console/fleet"),
    ("GET", "/console/quarantine"), ("POST", "/console/quarantine/q1/approve"), ("GET", "/console/imports"),
    ("GET", "/console/imports/c1"), ("POST", "/console/imports/c1/reject"), ("GET", "/console/requests"),
    ("GET", "/console/requests/r1"), ("GET", "/console/graph"), ("GET", "/console/healer"),
    ("GET", "/console/tool-calls"), ("GET", "/console/config"), ("POST", "/console/logout"),
    ("GET", "/console/templates"), ("POST", "/console/templates"), ("GET", "/console/templates/t1/n1"),
    ("POST", "/console/templates/t1/n1"),
])
def test_every_page_needs_a_signed_in_session(console_fleet: Fleet, method: str, path: str) -> None:
    base = console_fleet["control-plane"].url
    for cookie in ({}, {"moe_console": "forged.00ff"}):
        reply = httpx.request(method, f"{base}{path}", cookies=cookie, follow_redirects=False, timeout=30)
        assert reply.status_code == 303, (path, reply.text)
        assert reply.headers["location"] == "/console/login"


async def _rate(redis_url: str, namespace: str, tenant: str) -> None:
    """Ratings counted the way the expert-worker counts them: one tenant's own, one admin-approved (global)."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=0)
    try:
        for rating, approved in ((1, False), (5, True)):
            await board.record(Feedback(response_id=uuid.uuid4().hex, tenant_id=tenant, deadline_at=deadline_in(60),
                                        rating=rating, approved=approved,
                                        models_used=[ModelUse(model="expert-model-b", category="data_analyst")]))
    finally:
        await redis.aclose()


def test_an_expert_model_is_taken_out_of_service_and_back(console_fleet: Fleet, console_keys: ConsoleKeys,
                                                           browser: webdriver.Chrome, shots: Path) -> None:
    base = console_fleet["control-plane"].url
    env = console_fleet["gateway"].env
    asyncio.run(_rate(env["MOE_REDIS_URL"], env["MOE_TOPIC_NAMESPACE"], console_keys.tenant))
    _sign_in(browser, base, console_keys.admin)
    _wait(browser, ec.presence_of_element_located((By.ID, "overview")), "the overview (the first page)")
    browser.get(f"{base}/console/fleet")

    def state(form_id: str) -> str:
        return _text(browser, f"#{form_id} span")

    b, last = "expert-data_analyst-expert-model-b", "expert-data_analyst-expert-model"
    assert (state(b), state(last)) == ("enabled", "enabled")
    scores = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#scores tbody tr")]
    # score = (positive + neutral/2 + 1) / (ratings + 2): the tenant counts both its ratings (1 and 5 stars):
    # 2/4; the global score only the admin-approved 5 stars: 2/3
    assert f"{console_keys.tenant} data_analyst expert-model-b 0.5 2 1.0 0.0 1.0" in scores
    assert "all tenants (approved ratings) data_analyst expert-model-b 0.667 1 1.0 0.0 0.0" in scores
    browser.find_element(By.CSS_SELECTOR, f"#{b} button").click()
    _wait(browser, lambda d: state(b) == "disabled", "expert-model-b disabled")
    browser.find_element(By.CSS_SELECTOR, f"#{last} button").click()  # the category's last model: refused
    _wait(browser, ec.presence_of_element_located((By.ID, "error")), "the refusal")
    assert "last enabled model of 'data_analyst'" in _text(browser, "#error")
    assert state(last) == "enabled"
    browser.save_screenshot(str(shots / "12-expert-disabled.png"))
    browser.find_element(By.CSS_SELECTOR, f"#{b} button").click()
    _wait(browser, lambda d: state(b) == "enabled", "expert-model-b enabled again")

    # a precision tool, as an mcp replica lists it: switched off and on again, each switch in Redis
    asyncio.run(_serve_tools(env["MOE_REDIS_URL"], env["MOE_TOPIC_NAMESPACE"]))
    browser.get(f"{base}/console/fleet")
    assert state("tool-calculate") == "enabled"
    browser.find_element(By.CSS_SELECTOR, "#tool-calculate button").click()
    _wait(browser, lambda d: state("tool-calculate") == "disabled", "calculate disabled")
    assert asyncio.run(_disabled_tools(env["MOE_REDIS_URL"], env["MOE_TOPIC_NAMESPACE"])) == {"calculate"}
    browser.save_screenshot(str(shots / "12b-tool-disabled.png"))
    browser.find_element(By.CSS_SELECTOR, "#tool-calculate button").click()
    _wait(browser, lambda d: state("tool-calculate") == "enabled", "calculate enabled again")
    assert asyncio.run(_disabled_tools(env["MOE_REDIS_URL"], env["MOE_TOPIC_NAMESPACE"])) == set()


async def _serve_tools(redis_url: str, namespace: str) -> None:
    from moe_core.contracts.tools import select_tools
    from moe_core.llm.tool_switches import publish_catalog

    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await publish_catalog(redis, namespace, select_tools("calculate").values())
    finally:
        await redis.aclose()


async def _disabled_tools(redis_url: str, namespace: str) -> set[str]:
    from moe_core.llm.switches import Switches

    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        return await Switches(redis, namespace).disabled("tool")
    finally:
        await redis.aclose()
