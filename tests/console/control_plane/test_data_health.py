"""The console's data-health page in a real headless browser on the console's fleet: an ingest run that added zero
entities, false cache hits and a falling expert score, published on the real broker and recorded by the real
codex-lineage, shown on the page with their severities and their history per window (read server-side from
codex-lineage's API); a tenant admin sees its own tenants only, the operator all; codex-lineage down is a clear
message (503), never a 500. Screenshots under .data/artifacts/console/."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import ConsoleKeys
from tests.console.control_plane.test_lineage_page import _publish
from tests.lineage.codex_lineage.test_drift import _ingested
from tests.lineage.codex_lineage.test_drift_signals import _answer, _rating, _rid
from tests.support.fleet import Fleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e
WAIT_S = 30


def _sign_in(browser: webdriver.Chrome, base: str, key: str) -> None:
    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(key)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.ID, "sign-out"))


def _rows(browser: webdriver.Chrome, section: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].filter(r => r.dataset.run ||"
        " r.dataset.dataset || r.dataset.model).map(r => ({key: r.dataset.run || r.dataset.dataset ||"
        " r.dataset.model, text: r.innerText, severity: r.querySelector('td .sev').innerText,"
        " flags: r.querySelector('.flags').innerText.trim(),"
        " history: [...r.querySelectorAll('.history .sev')].map(s => s.innerText)}))", f"#{section}")
    return found


def _until(browser: webdriver.Chrome, url: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 90  # codex-lineage records the events as they come
    while time.monotonic() < deadline:
        browser.get(url)
        if ready():
            return
        time.sleep(0.5)
    raise AssertionError(browser.find_element(By.TAG_NAME, "main").text)


def test_drift_flags_and_signals_are_shown_with_their_severity_and_history(
        console_fleet: Fleet, console_keys: ConsoleKeys, infra: dict[str, str], browser: webdriver.Chrome,
        shots: Path) -> None:
    ours, theirs = new_namespace("dh"), new_namespace("dh")
    grew, stalled, other = (f"r-{uuid.uuid4().hex[:10]}" for _ in range(3))
    now = datetime.now(UTC)
    recent, earlier = now - timedelta(hours=2), now - timedelta(hours=30)
    answers = [_answer(ours, earlier, hit=i < 8) for i in range(10)]  # the baseline: 8 of 10 from the cache
    window = [_answer(ours, recent, hit=i < 3) for i in range(10)]  # the window: 3 of 10, 2 of 3 rated false
    ratings = [_rating(ours, now - timedelta(hours=1), window[i].response_id, r) for i, r in enumerate((1, 2, 5))]
    for at, rating in ((earlier, 5), (recent, 1)):
        ratings += [_rating(ours, at, _rid(), rating, (("general", "m-drop"),)) for _ in range(4)]
    _publish(console_fleet, [(e, "audit") for e in (_ingested(ours, grew, 6, 100, 106, (50, 53)),
                                                    _ingested(ours, stalled, 6, 106, 106, (53, 53), written=0),
                                                    _ingested(theirs, other, 6, 10, 16, (1, 4)))], "graph-ingest")
    _publish(console_fleet, [(a, "answers") for a in answers + window], "merger")
    _publish(console_fleet, [(f, "feedback") for f in ratings], "control-plane")

    base = console_fleet["control-plane"].url
    _sign_in(browser, base, console_keys.admin)  # the fleet operator: every tenant
    browser.get(f"{base}/console/keys")
    browser.find_element(By.LINK_TEXT, "Data health").click()
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.ID, "health-runs"))
    assert browser.find_element(By.CSS_SELECTOR, "nav a.active").text == "Data health"
    url = f"{base}/console/health?periods=3"

    def recorded() -> bool:
        runs = {r["key"] for r in _rows(browser, "health-runs")}
        cache = {r["key"]: r for r in _rows(browser, "health-cache")}
        scores = {r["key"]: r for r in _rows(browser, "health-scores")}
        return ({f"ingest:{grew}", f"ingest:{stalled}", f"ingest:{other}"} <= runs
                and "(3/10)" in cache.get(f"cache/{ours}", {}).get("text", "")
                and "(2/3)" in cache.get(f"cache/{ours}", {}).get("text", "")
                and "0.167 (4)" in scores.get("m-drop", {}).get("text", "")
                and "0.833 (4)" in scores.get("m-drop", {}).get("text", ""))
    _until(browser, url, recorded)
    runs = {r["key"]: r for r in _rows(browser, "health-runs")}
    zero = runs[f"ingest:{stalled}"]  # declared three triples, wrote none, none held or rejected: lost writes
    assert zero["severity"] == "crit" and zero["flags"] == "nothing_written", zero
    assert runs[f"ingest:{grew}"]["severity"] == "ok" and runs[f"ingest:{grew}"]["flags"] == ""
    assert runs[f"ingest:{other}"]["severity"] == "ok"
    assert "crit" in browser.find_element(By.CSS_SELECTOR, "#health-runs h2 .sev").text
    cache = {r["key"]: r for r in _rows(browser, "health-cache")}[f"cache/{ours}"]
    assert cache["severity"] == "crit" and cache["flags"] == "cache_false_hits, cache_hit_rate_drop", cache
    assert cache["history"] == ["crit", "ok", "info"], cache  # the day before: 8 of 10 from the cache, no ratings
    assert "0.3 (3/10)" in cache["text"] and "0.667 (2/3)" in cache["text"] and "0.8" in cache["text"], cache
    drop = {r["key"]: r for r in _rows(browser, "health-scores")}["m-drop"]
    assert drop["severity"] == "crit" and drop["flags"] == "score_drop" and drop["history"][0] == "crit", drop
    assert "0.167 (4)" in drop["text"] and ours in drop["text"], drop
    refused = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not refused, refused
    browser.save_screenshot(str(shots / "13-data-health.png"))

    # a tenant admin of the other tenant: its own run only, none of ours; ours asked for by name is refused
    [admin] = new_keys(infra["postgres"], ("health-admin", "admin", [theirs]))
    browser.delete_all_cookies()
    _sign_in(browser, base, admin)
    browser.get(f"{base}/console/health")
    assert {r["key"] for r in _rows(browser, "health-runs")} == {f"ingest:{other}"}
    assert _rows(browser, "health-cache") == [] and _rows(browser, "health-scores") == []
    assert "No cache activity" in browser.find_element(By.ID, "health-cache").text
    browser.get(f"{base}/console/health?tenant={ours}")
    assert "not one of this key's tenants" in browser.find_element(By.ID, "refused").text
    assert not browser.find_elements(By.ID, "health-runs")


def test_codex_lineage_down_is_a_clear_message_not_a_500(console_fleet: Fleet, console_keys: ConsoleKeys,
                                                         browser: webdriver.Chrome, shots: Path) -> None:
    base, lineage = console_fleet["control-plane"].url, console_fleet["codex-lineage"]
    _sign_in(browser, base, console_keys.admin)
    lineage.stop()
    try:
        browser.get(f"{base}/console/health")
        message = browser.find_element(By.ID, "health-unavailable").text
        assert "codex-lineage did not answer" in message and lineage.url in message, message
        assert not browser.find_elements(By.ID, "health-runs")
        assert browser.find_element(By.CSS_SELECTOR, "nav a.active").text == "Data health"
        browser.save_screenshot(str(shots / "14-data-health-unavailable.png"))
        cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
        page = httpx.get(f"{base}/console/health", cookies=cookies, timeout=60)
        assert page.status_code == 503 and "Data health is unavailable" in page.text, page.status_code
        browser.find_element(By.LINK_TEXT, "Guardrails").click()  # the rest of the console works
        WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.ID, "guardrail-quarantine"))
    finally:
        lineage.start()
        lineage.wait_ready()
    browser.get(f"{base}/console/health")
    assert browser.find_elements(By.ID, "health-runs") and not browser.find_elements(By.ID, "health-unavailable")
