"""The console's single sign-on in a real browser (headless Debian chromium, Selenium): the sign-in page's
"Sign in with Dex" link is clicked, the browser arrives at the provider's own login page (Dex, tests/support/dex.py),
the person signs in there and lands on the console, signed in as themselves.

The page is boosted by htmx (base.html: hx-boost); a boosted link is fetched with XHR, and a redirect to another
origin is then refused by the console's CSP (connect-src 'self'): the link must be a full navigation
(hx-boost="false"). tests/console/control_plane/test_oidc_sign_in.py drives the same flow with an HTTP client,
which no CSP and no htmx stand in the way of; this test is the browser's.

The control plane runs in this process (uvicorn in a thread, OIDC on) on the real Postgres, Redis, Kafka and OPA."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from control_plane.app import create_app
from control_plane.console.oidc_settings import OidcSettings
from control_plane.settings import ControlPlaneSettings
from tests.support import uvicorn_thread
from tests.support.dex import Client, Dex, User, running_dex
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace
from tests.support.ports import free_port

pytestmark = pytest.mark.infra
WAIT_S = 30
NURSE = User(f"nurse-{uuid.uuid4().hex[:6]}@example.org", "ward 7 rounds", "Nora Nurse", ("moe-console-admins",))


@pytest.fixture(scope="module")
def sso_console(infra: dict[str, str]) -> Iterator[tuple[str, Dex]]:
    """The console's base URL (OIDC sign-in with Dex on) and the running Dex."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = Client("moe-console", uuid.uuid4().hex, f"{base}/console/oidc/callback")
    with running_dex([client], [NURSE]) as dex:
        settings = ControlPlaneSettings(topic_namespace=new_namespace("sso"), kafka_bootstrap=infra["kafka"],
                                        redis_url=infra["redis"], postgres_dsn=infra["postgres"],
                                        opa_url=infra["opa"])
        oidc = OidcSettings(issuer=dex.issuer, client_id=client.id, client_secret=client.secret,
                            redirect_uri=client.redirect_uri, provider_name="Dex",
                            admin_groups="moe-console-admins", scopes="openid email profile groups")
        stop = uvicorn_thread.serve(create_app(settings, oidc=oidc), uvicorn_thread.bind(port=port),
                                    start_timeout=60, stop_timeout=15, what="the control plane")
        try:
            yield base, dex
        finally:
            stop()


def test_the_sso_link_takes_the_browser_to_the_provider_and_back_signed_in(
        sso_console: tuple[str, Dex], infra: dict[str, str], browser: webdriver.Chrome) -> None:
    base, dex = sso_console
    tenant = f"sso-{uuid.uuid4().hex[:8]}"
    (admin,) = new_keys(infra["postgres"], ("sso-provisioner", "admin", [tenant]))
    made = httpx.post(f"{base}/v1/admin/principals", headers={"Authorization": f"Bearer {admin}"}, timeout=30,
                      json={"kind": "person", "tenant_id": tenant, "display_name": "Nora",
                            "oidc_issuer": dex.issuer, "oidc_subject": NURSE.subject})
    assert made.status_code == 201, made.text

    browser.get(f"{base}/console/login")
    link = browser.find_element(By.ID, "sso-sign-in")
    assert link.text == "Sign in with Dex"
    link.click()
    # the provider's own login page (Dex's password form), not the console's sign-in page
    try:
        WebDriverWait(browser, WAIT_S).until(lambda b: b.current_url.startswith(dex.issuer)
                                             and b.find_elements(By.NAME, "password"))
    except TimeoutException:
        raise AssertionError(f"still at {browser.current_url}: {browser.get_log('browser')}") from None
    browser.find_element(By.NAME, "login").send_keys(NURSE.email)
    browser.find_element(By.NAME, "password").send_keys(NURSE.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.ID, "overview")))
    assert browser.current_url == f"{base}/console/overview"  # the console opens on its overview
    browser.get(f"{base}/console/keys")
    WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.ID, "new-key")))
    assert browser.find_elements(By.ID, "sign-out")
    # the session is the person's: a tenant admin of their tenant, whose usage is the tenant's, not the fleet's
    assert browser.find_element(By.ID, "usage-scope").text == f"Usage this month (tenant {tenant})"
    logs: list[dict[str, Any]] = browser.get_log("browser")
    blocked = [e for e in logs if "Content Security Policy" in str(e.get("message")) or "htmx:" in str(e)]
    assert not blocked, blocked
