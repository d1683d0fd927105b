"""The guardrails' review in the browser: a blocked answer and a redaction of the admin's tenant (written by
the guardrail stage's store into the real Redis) are listed with their rules; the blocked one opens with its
quarantined text; another tenant's blocked answer is neither listed nor opened."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from moe_core.llm.guardrails import check, parse
from moe_core.llm.guardrails.quarantine import Decision, QuarantineStore
from tests.console.conftest import ConsoleKeys
from tests.support.fleet import ServiceProcess
from tests.support.lone_service import lone_service

pytestmark = pytest.mark.e2e
RULES = """
tenants:
  any:
    output:
      - {id: no-codename, pattern: "(?i)project\\\\s+bluebird", reason: an internal code name}
      - {id: no-iban, detector: iban, action: redact, reason: account numbers}
"""


@pytest.fixture(scope="module")
def control_plane(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    """A control plane alone (the console reads only Redis and its API here: no fleet, no audit store)."""
    with lone_service("control-plane", infra, "cg") as service:
        yield service


async def _store(redis_url: str, namespace: str, entries: list[tuple[str, str, str]]) -> None:
    rules = parse(RULES, "test").tenants["any"].output
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        store = QuarantineStore(redis, namespace, 3600)
        for rid, tenant, text in entries:
            await store.put_first(Decision.of(rid, tenant, "output", check(text, rules), "What is it?", text))
    finally:
        await redis.aclose()


def test_blocked_answers_and_redactions_are_reviewed_per_tenant(
        control_plane: ServiceProcess, console_keys: ConsoleKeys, infra: dict[str, str], browser: webdriver.Chrome,
        shots: Path) -> None:
    base, namespace = control_plane.url, control_plane.env["MOE_TOPIC_NAMESPACE"]
    tag = uuid.uuid4().hex[:8]
    blocked, redacted, foreign = f"blocked-{tag}", f"redacted-{tag}", f"foreign-{tag}"
    asyncio.run(_store(infra["redis"], namespace, [
        (blocked, console_keys.tenant, f"Project Bluebird {tag} starts in May."),
        (redacted, console_keys.tenant, "Pay to DE89 3704 0044 0532 0130 00."),
        (foreign, f"other-{tag}", "Project Bluebird again.")]))

    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(console_keys.admin)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 30).until(lambda d: "/console/login" not in d.current_url)
    browser.get(f"{base}/console/guardrails")
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "guardrail-quarantine")))
    quarantine = browser.find_element(By.ID, "guardrail-quarantine").text
    journal = browser.find_element(By.ID, "guardrail-journal").text
    assert blocked in quarantine and "no-codename" in quarantine and "an internal code name" in quarantine
    assert foreign not in quarantine, "another tenant's blocked answer is not listed"
    assert "Bluebird" not in quarantine, "the list does not show the quarantined text"
    assert redacted in journal and "1 x iban (no-iban: account numbers)" in journal and "DE89" not in journal
    browser.save_screenshot(str(shots / "30-guardrails.png"))

    browser.find_element(By.LINK_TEXT, blocked).click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "quarantined")))
    assert browser.find_element(By.ID, "quarantined").text == f"Project Bluebird {tag} starts in May."
    browser.save_screenshot(str(shots / "31-guardrail-blocked.png"))

    browser.get(f"{base}/console/guardrails/{foreign}")
    assert "No quarantined answer" in browser.page_source and not browser.find_elements(By.ID, "quarantined")
