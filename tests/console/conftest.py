"""A lean fleet for the admin console journey (gateway, planner, expert-worker, merger, codex-lineage; own
topic namespace and audit schema, scripted models), keys, and a headless Debian chromium driven by Selenium
through Debian's chromedriver (installed by `make install`; nothing is downloaded at run time)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fleetlib import api as fleetlib_api
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import Scripted
from tests.support import opa
from tests.support.audited_fleet import audited_fleet
from tests.support.fleet import REPO, Fleet
from tests.support.keys import new_keys, new_person_keys
from tests.support.namespaces import new_namespace
from tests.support.store_auth import neo4j_env

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO / ".data" / "artifacts" / "console"
HIDDEN_TENANT = new_namespace("hq")  # a tenant whose policy hides its questions (MOE_HIDDEN_QUESTION_TENANTS)


@dataclass(frozen=True)
class ConsoleKeys:
    admin: str
    user: str
    tenant: str


@pytest.fixture(scope="package")
def console_fleet(infra: dict[str, str], scripted_server: Scripted) -> Iterator[Fleet]:
    fleetlib_api.ensure_up(["neo4j", "chroma"])  # the graph page's statistics; an import's source document
    stores = fleetlib_api.endpoints()
    graph = {"MOE_NEO4J_URL": stores["neo4j"], "MOE_CHROMA_URL": stores["chroma"], **neo4j_env()}
    prices = '{"moe-orchestrator": {"input": 1000.0, "output": 2000.0}}'  # the overview's cost (per 1M tokens)
    rules = Path(tempfile.mkdtemp(prefix="console-guardrails-")) / "guardrails.yaml"  # an approval replaces it
    rules.write_text("version: 1\ntenants: {}\n")  # (tests/console/control_plane/test_guardrail_changes.py)
    with audited_fleet(infra, scripted_server.url, "con", gateway_workers=2, MOE_EXACT_CACHE="false",
                       MOE_MODEL_PRICES=prices, MOE_HIDDEN_QUESTION_TENANTS=HIDDEN_TENANT,
                       MOE_GUARDRAILS_FILE=str(rules), MOE_GUARDRAILS_RELOAD_S="1",
                       MOE_OPA_BINARY=opa.binary(),  # an egress policy candidate is simulated by `opa eval`
                       **graph) as running:
        yield running.fleet
    shutil.rmtree(rules.parent, ignore_errors=True)


@pytest.fixture(scope="package")
def console_keys(infra: dict[str, str]) -> ConsoleKeys:
    tenant = new_namespace("ct")
    # the fleet operator: the journey creates a tenant (a tenant admin may not); a person, since approvals are
    # people's (a service account's key approves nothing: policy/opa/knowledge.rego)
    (admin,) = new_person_keys(infra["postgres"], ("console-admin", "operator", [tenant]))
    (user,) = new_keys(infra["postgres"], ("console-user", "user", [tenant]))
    return ConsoleKeys(admin, user, tenant)


@pytest.fixture(scope="package")
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
