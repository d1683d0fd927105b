"""The console's lineage page in a real headless browser (Debian chromium + chromedriver, Selenium) on the console's
fleet: one request, then its lineage drawn by Cytoscape.js (served by the console) — its stage runs and the
topics between them as nodes and edges, a node's details on selection. Screenshot under .data/artifacts/console/."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Scripted
from tests.console.conftest import ConsoleKeys
from tests.e2e.helpers import plan_reply
from tests.support.fleet import Fleet

pytestmark = pytest.mark.e2e
WAIT_S = 30


def test_a_requests_lineage_is_drawn_as_a_graph(console_fleet: Fleet, console_keys: ConsoleKeys,
                                                 scripted_server: Scripted, browser: webdriver.Chrome,
                                                 shots: Path) -> None:
    m = f"L{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital of Chile {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Santiago is the capital of Chile.\nCONFIDENCE: high"}])
    client = openai.OpenAI(base_url=f"{console_fleet['gateway'].url}/v1", api_key=console_keys.user, max_retries=0,
                           timeout=60)
    rid = client.chat.completions.create(model="moe-orchestrator", messages=[
        {"role": "user", "content": f"What is the capital of Chile? {m}"}]).id.removeprefix("chatcmpl-")
    base = console_fleet["control-plane"].url
    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(console_keys.admin)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.ID, "sign-out"))

    def labels() -> list[str]:
        browser.get(f"{base}/console/requests/{rid}/lineage")
        WebDriverWait(browser, WAIT_S).until(
            lambda b: b.execute_script("return window.lineageGraph !== undefined"))
        found: list[str] = browser.execute_script("return window.lineageGraph.nodes().map(n => n.data('label'))")
        return found

    deadline, found = time.monotonic() + WAIT_S * 2, []
    while time.monotonic() < deadline and "merger.merge" not in found:  # codex-lineage records as the run ends
        found = labels()
        time.sleep(0 if "merger.merge" in found else 0.5)
    assert {"planner.plan", "expert-worker.expert", "merger.merge"} <= set(found), found
    assert any(label.endswith(".requests.v1") for label in found) and any(".results." in f for f in found), found
    graph: dict[str, Any] = browser.execute_script(
        "const cy = window.lineageGraph; const plan = cy.nodes().filter(n => n.data('label') === 'planner.plan');"
        "return {edges: cy.edges().length, drawn: document.getElementById('lineage-graph').dataset.drawn,"
        " planIn: plan.incomers('node').map(n => n.data('label')),"
        " visible: cy.nodes().every(n => n.renderedBoundingBox().w > 0)}")
    assert graph["edges"] >= len(found) - 1 and int(graph["drawn"]) == len(found) and graph["visible"], graph
    assert any(label.endswith(".requests.v1") for label in graph["planIn"]), graph  # the plan reads the request
    browser.execute_script("window.lineageGraph.nodes().filter(n => n.data('label') === 'expert-worker.expert')"
                           ".emit('tap')")
    assert "expert-model @ scripted" in browser.find_element(By.ID, "lineage-selected").text
    refused = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE" and "favicon.ico" not in
               str(e.get("message"))]  # (the console has no icon)
    assert not refused, refused  # no script refused (CSP) or failing
    browser.save_screenshot(str(shots / "11-request-lineage.png"))
    browser.get(f"{base}/console/requests/{rid}")
    assert browser.find_element(By.ID, "to-lineage").get_attribute("href").endswith(f"/console/requests/{rid}/lineage")
