"""The console's lineage page in a real headless browser (Debian chromium + chromedriver, Selenium) on the console's
fleet: one request, then its lineage drawn by Cytoscape.js (served by the console) — its stage runs and the
topics between them as nodes and edges, a node's details on selection; and an answer whose graph task used an imported
fact, drawn with the fact, the approved import, its approval and its source document. Screenshots under
.data/artifacts/console/."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from moe_core.contracts import Answer, Source, TaskResult, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.producers import key_file
from tests.conftest import Scripted
from tests.console.conftest import ConsoleKeys
from tests.e2e.helpers import plan_reply
from tests.lineage.codex_lineage.test_fact_lineage import _bundle, _call
from tests.support.fleet import Fleet
from tests.support.keys import new_keys, new_person_keys

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

    def labels() -> list[str]:  # none while the page has no graph: nothing recorded yet
        browser.get_log("browser")  # drained: a load before the run is recorded logs its 404; the last load counts
        browser.get(f"{base}/console/requests/{rid}/lineage")
        found: list[str] = browser.execute_script(
            "return window.lineageGraph === undefined ? [] : window.lineageGraph.nodes().map(n => n.data('label'))")
        return found

    # codex-lineage may be catching up when the test begins (CI: it had just been restarted by the data health
    # page's test and had not recorded the run 40 s after the answer): the page is reloaded until it has
    deadline, found = time.monotonic() + WAIT_S * 4, []
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
    classified = browser.find_element(By.ID, "lineage-classification").text  # GET /v1/lineage/{id}'s classification
    assert classified == "Data class internal (INTERN, from default_class): it reached only what its class allows.", \
        classified
    browser.execute_script("window.lineageGraph.nodes().filter(n => n.data('label') === 'expert-worker.expert')"
                           ".emit('tap')")
    assert "expert-model @ scripted" in browser.find_element(By.ID, "lineage-selected").text
    refused = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]  # (an icon too: favicon.svg)
    assert not refused, refused  # no script refused (CSP) or failing
    browser.save_screenshot(str(shots / "11-request-lineage.png"))
    browser.get(f"{base}/console/requests/{rid}")
    assert browser.find_element(By.ID, "to-lineage").get_attribute("href").endswith(f"/console/requests/{rid}/lineage")


def _publish(fleet: Fleet, messages: list[tuple[Any, str]], service: str) -> None:
    env = fleet["codex-lineage"].env

    async def send() -> None:
        bus = Bus(FleetSettings(kafka_bootstrap=env["MOE_KAFKA_BOOTSTRAP"], service_name=service,
                                topic_namespace=env["MOE_TOPIC_NAMESPACE"],
                                producer_signing_key=str(key_file(fleet.producer_keys, service))))
        await bus.broker.start()
        try:
            for message, topic in messages:
                await bus.publish(message, getattr(bus.topics, topic))
        finally:
            await bus.close()

    asyncio.run(send())


def test_an_answers_fact_is_drawn_with_its_import_approval_and_source_document(
        console_fleet: Fleet, console_keys: ConsoleKeys, infra: dict[str, str], browser: webdriver.Chrome,
        shots: Path) -> None:
    tag, tenant, base = uuid.uuid4().hex[:8], console_keys.tenant, console_fleet["control-plane"].url
    (importer,) = new_keys(infra["postgres"], ("console-importer", "admin", [tenant]))
    (approver,) = new_person_keys(infra["postgres"], ("console-approver", "admin", [tenant]))  # approvals: people's
    uploaded = _call("POST", f"{base}/v1/memory/documents", importer,
                     json={"title": f"Inventory {tag}", "text": f"The Zorblat Engine {tag} uses the Quandrix Store."})
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    bundle, title = _bundle(tag)
    created = _call("POST", f"{base}/v1/knowledge/imports", importer,
                    params={"tenant": tenant, "document_id": document["id"]}, content=json.dumps(bundle).encode())
    assert created.status_code == 201, created.text
    cs_id = created.json()["id"]
    approved = _call("POST", f"{base}/v1/knowledge/imports/{cs_id}/approve", approver, json={"note": "looked fine"})
    assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
    [fact] = approved.json()["result"]["relations_written"]
    rid = f"cfl-{tag}"
    common: dict[str, Any] = {"response_id": rid, "tenant_id": tenant, "deadline_at": deadline_in(60)}
    _publish(console_fleet, [(TaskResult(task_id="t1", kind="graph", category="technical", content=title,
                                         sources=[Source(kind="graph", ref=fact, title=title)], **common),
                              "results")], "graph-rag")
    _publish(console_fleet, [(Answer(mode="moe-orchestrator", content="It does.", **common), "answers")], "merger")

    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(console_keys.admin)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_elements(By.ID, "sign-out"))

    def kinds() -> dict[str, list[str]]:  # none while the page has no graph: nothing recorded yet
        browser.get_log("browser")  # drained: only the last load's log counts
        browser.get(f"{base}/console/requests/{rid}/lineage")
        found: dict[str, list[str]] = browser.execute_script(
            "const out = {}; if (window.lineageGraph === undefined) { return out; }"
            " window.lineageGraph.nodes().forEach(n => {"
            " (out[n.data('kind')] = out[n.data('kind')] || []).push(n.data('label')); }); return out;")
        return found

    deadline, found = time.monotonic() + WAIT_S * 4, {}
    while time.monotonic() < deadline and "approval" not in found:  # codex-lineage records the events as they come
        found = kinds()
        time.sleep(0 if "approval" in found else 0.5)
    assert found.get("fact") == [title] and found.get("import") == [cs_id], found
    assert found.get("document") == [f"Inventory {tag}"] and len(found.get("approval", [])) == 1, found
    graph: dict[str, Any] = browser.execute_script(
        "const cy = window.lineageGraph; const imp = cy.nodes('[kind = \"import\"]');"
        "const fact = cy.nodes('[kind = \"fact\"]');"
        "return {intoImport: imp.incomers('node').map(n => n.data('kind')).sort(),"
        " outOfFact: fact.outgoers('node').map(n => n.data('label')),"
        " visible: cy.nodes().every(n => n.renderedBoundingBox().w > 0)}")
    assert graph["intoImport"] == ["approval", "document"] and graph["outOfFact"] == ["graph-rag.graph"], graph
    assert graph["visible"], graph
    assert "facts used" in browser.find_element(By.ID, "lineage-provenance").text
    selected = browser.find_element(By.ID, "lineage-selected")
    browser.execute_script("window.lineageGraph.nodes('[kind = \"document\"]').emit('tap')")
    assert f"sha256:{document['sha256']}" in selected.text and document["id"] in selected.text, selected.text
    browser.execute_script("window.lineageGraph.nodes('[kind = \"approval\"]').emit('tap')")
    principal = approved.json()["approvals"][0]["principal"]
    assert f"principal: {principal}" in selected.text and "note: looked fine" in selected.text, selected.text
    browser.execute_script("window.lineageGraph.nodes('[kind = \"import\"]').emit('tap')")
    assert "status: applied" in selected.text and "approvals required: 1" in selected.text, selected.text
    refused = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not refused, refused
    browser.save_screenshot(str(shots / "12-fact-lineage.png"))
