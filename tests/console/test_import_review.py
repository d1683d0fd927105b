"""A pending knowledge import in the browser (real Neo4j and Postgres): a bundle exported from one tenant and
imported into the console admin's tenant by another admin key waits for approval; the console lists it, shows
its diff against the graph and approves it (four-eyes: the approver is not the importer); it is applied."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from moe_core.graph import GraphDB
from moe_core.graph.model import Provenance, Triple
from moe_core.graph.store import GraphStore
from tests.console.conftest import ConsoleKeys
from tests.graph.helpers import purge
from tests.support.fleet import Fleet
from tests.support.keys import new_keys
from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.e2e


async def _seed(url: str, tenant: str, subject: str) -> None:
    db = GraphDB(url, *neo4j_auth())
    try:
        triple = Triple(subject=subject, relation="USES", object="Flarnix Store", confidence=0.9)
        await GraphStore(db).write_triple(triple, Provenance(tenant, "extracted", domain="technical", origin="seed"))
    finally:
        await db.close()


async def _purge(url: str, *tenants: str) -> None:
    db = GraphDB(url, *neo4j_auth())
    try:
        for tenant in tenants:
            await purge(db, tenant)
    finally:
        await db.close()


def test_a_pending_import_shows_its_diff_and_is_approved(console_fleet: Fleet, console_keys: ConsoleKeys,
                                                         browser: webdriver.Chrome, shots: Path) -> None:
    control_plane = console_fleet["control-plane"]
    base, neo4j = control_plane.url, control_plane.env["MOE_NEO4J_URL"]
    source, subject = f"cs-{uuid.uuid4().hex[:8]}", f"Quorvex{uuid.uuid4().hex[:6]} Cache"
    asyncio.run(_seed(neo4j, source, subject))
    exporter, importer = new_keys(control_plane.env["MOE_POSTGRES_DSN"], ("console-exporter", "user", [source]),
                                  ("console-importer", "admin", [console_keys.tenant]))
    try:
        bundle = httpx.post(f"{base}/v1/knowledge/export", json={"domain": "technical"}, timeout=30,
                            headers={"Authorization": f"Bearer {exporter}"})
        assert bundle.status_code == 200, bundle.text
        created = httpx.post(f"{base}/v1/knowledge/imports", content=json.dumps(bundle.json()).encode(), timeout=30,
                             headers={"Authorization": f"Bearer {importer}"})
        assert created.status_code == 201, created.text
        cs_id = created.json()["id"]

        browser.get(f"{base}/console/login")
        browser.find_element(By.ID, "api-key").send_keys(console_keys.admin)
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "new-key")))
        browser.get(f"{base}/console/imports")
        browser.find_element(By.LINK_TEXT, cs_id).click()
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "diff")))
        assert subject in browser.find_element(By.ID, "diff").text  # the relation it would add
        browser.save_screenshot(str(shots / "15-import-diff.png"))

        form = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/imports/{cs_id}/approve"]')
        form.find_element(By.NAME, "note").send_keys("reviewed in the console")
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(lambda d: "Decided by" in d.page_source)
        browser.save_screenshot(str(shots / "16-import-applied.png"))
        cs = httpx.get(f"{base}/v1/knowledge/imports/{cs_id}", timeout=30,
                       headers={"Authorization": f"Bearer {console_keys.admin}"}).json()
        assert cs["status"] == "applied"
        assert [a.get("note") for a in cs["approvals"]] == ["reviewed in the console"]
    finally:
        asyncio.run(_purge(neo4j, source, console_keys.tenant))
