"""Quarantine review in the browser: two triples held for the admin's tenant (real Neo4j); one approved with a
note, one rejected with a reason; the graph API then reports both decisions with who made them and why."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.model import Provenance, Triple
from moe_core.knowledge.graph.quarantine import Quarantine
from moe_core.knowledge.graph.store import GraphStore
from tests.console.conftest import ConsoleKeys
from tests.graph.helpers import purge
from tests.support.fleet import Fleet
from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.e2e


async def _hold(url: str, tenant: str, subjects: list[str]) -> list[str]:
    db = GraphDB(url, *neo4j_auth())
    try:
        quarantine = Quarantine(GraphStore(db))
        ids = []
        for subject in subjects:
            prov = Provenance(tenant=tenant, source="extracted", origin=f"console-{subject}",
                              expert="technical_support", model="expert-model", entity_type="Technology")
            triple = Triple(subject=subject, relation="DEPENDS_ON", object="Kafka")
            qid, _ = await quarantine.hold(triple, prov, 120, 50)
            ids.append(qid)
        return ids
    finally:
        await db.close()


async def _purge(url: str, tenant: str) -> None:
    db = GraphDB(url, *neo4j_auth())
    try:
        await purge(db, tenant)
    finally:
        await db.close()


def test_approve_with_a_note_and_reject_with_a_reason(console_fleet: Fleet, console_keys: ConsoleKeys,
                                                      browser: webdriver.Chrome, shots: Path) -> None:
    base, neo4j = console_fleet["control-plane"].url, console_fleet["gateway"].env["MOE_NEO4J_URL"]
    tag = uuid.uuid4().hex[:6]
    keep, drop = asyncio.run(_hold(neo4j, console_keys.tenant, [f"Billing{tag}", f"Ledger{tag}"]))
    try:
        browser.get(f"{base}/console/login")
        browser.find_element(By.ID, "api-key").send_keys(console_keys.admin)
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "overview")))
        browser.get(f"{base}/console/quarantine")
        assert f"Billing{tag}" in browser.page_source and f"Ledger{tag}" in browser.page_source
        assert 'data-approvals="0" data-required="1"' in browser.page_source  # not a protected domain: one admin
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-quarantine="{keep}"]')  # the original's columns too
        assert row.find_element(By.CSS_SELECTOR, ".reach").text == "120 (limit 50)"
        assert row.find_element(By.CSS_SELECTOR, ".source-model").text == "expert-model (technical_support)"
        assert row.find_element(By.CSS_SELECTOR, ".entity-types").text == "Technology"
        browser.save_screenshot(str(shots / "13-quarantine-pending.png"))

        approve = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/quarantine/{keep}/approve"]')
        approve.find_element(By.NAME, "note").send_keys("checked against the architecture record")
        approve.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(lambda d: f"Billing{tag}" not in d.page_source)
        reject = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/quarantine/{drop}/reject"]')
        reject.find_element(By.NAME, "note").send_keys("the ledger has no Kafka dependency")
        reject.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(lambda d: f"Ledger{tag}" not in d.page_source)

        items = httpx.get(f"{base}/graph/quarantine", params={"status": "all"}, timeout=30,
                          headers={"Authorization": f"Bearer {console_keys.admin}"}).json()["data"]
        decided = {i["id"]: i for i in items}
        assert decided[keep]["status"] == "approved"
        assert decided[keep]["note"] == "checked against the architecture record"
        assert decided[drop]["status"] == "rejected"
        assert decided[drop]["note"] == "the ledger has no Kafka dependency"
        assert decided[drop]["decided_by"].startswith("key:")
        browser.get(f"{base}/console/quarantine?status=all")
        browser.save_screenshot(str(shots / "14-quarantine-decided.png"))
    finally:
        asyncio.run(_purge(neo4j, console_keys.tenant))
