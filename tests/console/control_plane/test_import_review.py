"""A pending knowledge import in the browser (real Neo4j and Postgres): a bundle exported from one tenant and
imported into the console admin's tenant by another admin key waits for approval; the console lists it, shows
its diff against the graph and approves it (four-eyes: the approver is not the importer); it is applied."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.bundles import BundleEntity, BundleRelation, Origin, Selection, seal
from moe_core.knowledge.graph.model import Provenance, Triple
from moe_core.knowledge.graph.store import GraphStore
from tests.console.conftest import ConsoleKeys
from tests.graph.helpers import purge
from tests.support.fleet import Fleet
from tests.support.keys import new_keys, new_person_keys
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
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "overview")))
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


async def _seed_fact(url: str, tenant: str, subject: str, obj: str) -> None:
    db = GraphDB(url, *neo4j_auth())
    try:
        triple = Triple(subject=subject, relation="TREATS", object=obj, confidence=0.7)
        await GraphStore(db).write_triple(triple, Provenance(tenant, "extracted", domain="medical", origin="seed"))
    finally:
        await db.close()


def test_the_review_page_shows_the_source_document_every_approval_and_entities_by_name(
        console_fleet: Fleet, console_keys: ConsoleKeys, browser: webdriver.Chrome, shots: Path) -> None:
    """A medical import (two people's approvals) from a named source document: before the decision the reviewer
    sees the document, the first approver and their note; after it, both approvals with their notes (not only the
    last approver's); an entity the graph already holds is shown by its name, not as JSON."""
    control_plane = console_fleet["control-plane"]
    base, neo4j, tenant = control_plane.url, control_plane.env["MOE_NEO4J_URL"], console_keys.tenant
    tag = uuid.uuid4().hex[:6]
    disease, known_drug, new_drug = f"Sepsis {tag}", f"Vancorin {tag}", f"Meropenix {tag}"
    asyncio.run(_seed_fact(neo4j, tenant, known_drug, disease))
    dsn = control_plane.env["MOE_POSTGRES_DSN"]
    (importer,) = new_keys(dsn, ("console-importer", "admin", [tenant]))
    first, second = new_person_keys(dsn, (f"Nurse Ana {tag}", "admin", [tenant]), (f"Dr Ben {tag}", "admin", [tenant]))
    auth = {"Authorization": f"Bearer {importer}"}
    try:
        uploaded = httpx.post(f"{base}/v1/memory/documents", headers=auth, timeout=120, json={
            "title": f"Sepsis guideline {tag}", "source": "ward-7/sepsis.md",
            "text": f"{new_drug} treats {disease} where {known_drug} is not tolerated."})
        assert uploaded.status_code == 201, uploaded.text
        document = uploaded.json()
        origin = Origin(tenant=f"elsewhere-{tag}", exported_at=datetime.now(UTC), exported_by="key:elsewhere",
                        graph_version=1, selection=Selection())
        bundle = seal(origin, [BundleEntity(name=disease, type="Disease"), BundleEntity(name=new_drug, type="Drug")],
                      [BundleRelation(subject=new_drug, relation="TREATS", object=disease, confidence=0.8,
                                      domain="medical")])
        created = httpx.post(f"{base}/v1/knowledge/imports", headers=auth, timeout=30,
                             params={"tenant": tenant, "document_id": document["id"]},
                             content=json.dumps(bundle).encode())
        assert created.status_code == 201, created.text
        cs_id = created.json()["id"]
        assert created.json()["approvals_required"] == 2 and created.json()["source_document"]["id"] == document["id"]
        one = httpx.post(f"{base}/v1/knowledge/imports/{cs_id}/approve", timeout=30, json={
            "note": "dose checked against the ward guideline"}, headers={"Authorization": f"Bearer {first}"})
        assert one.status_code == 200 and one.json()["status"] == "pending", one.text

        browser.get(f"{base}/console/login")
        browser.find_element(By.ID, "api-key").send_keys(second)
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "overview")))
        browser.get(f"{base}/console/imports/{cs_id}")
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "diff")))
        source = browser.find_element(By.ID, "source-document").text
        assert f"Sepsis guideline {tag}" in source and document["id"] in source and "ward-7/sepsis.md" in source
        assert document["sha256"] in source
        approvals = browser.find_elements(By.CSS_SELECTOR, "#approvals li")
        assert len(approvals) == 1 and f"Nurse Ana {tag}" in approvals[0].text
        assert "dose checked against the ward guideline" in approvals[0].text
        entities = browser.find_element(By.XPATH, '//*[@id="diff"]/h3[text()="entities"]/following-sibling::table[1]')
        rows = {r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text
                for r in entities.find_elements(By.TAG_NAME, "tr")}
        assert rows["unchanged (1)"] == disease, rows  # by name, not as JSON ('"Sepsis …"')
        assert rows["added (1)"].startswith(new_drug), rows
        browser.save_screenshot(str(shots / "17-import-review-one-approval.png"))

        form = browser.find_element(By.CSS_SELECTOR, f'form[action="/console/imports/{cs_id}/approve"]')
        form.find_element(By.NAME, "note").send_keys("second reviewer: matches the source")
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 30).until(lambda d: "Decided by" in d.page_source)
        approvals = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#approvals li")]
        assert len(approvals) == 2, approvals
        assert f"Nurse Ana {tag}" in approvals[0] and "dose checked against the ward guideline" in approvals[0]
        assert f"Dr Ben {tag}" in approvals[1] and "second reviewer: matches the source" in approvals[1]
        assert f"Sepsis guideline {tag}" in browser.find_element(By.ID, "source-document").text
        browser.save_screenshot(str(shots / "18-import-review-applied.png"))
    finally:
        asyncio.run(_purge(neo4j, tenant))
