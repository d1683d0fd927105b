"""A lean fleet for the admin console journey (gateway, planner, expert-worker, merger, codex-lineage; own
topic namespace and audit schema, scripted models), keys, and a headless Debian chromium driven by Selenium
through Debian's chromedriver (installed by `make install`; nothing is downloaded at run time)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from fleetlib import api as fleetlib_api
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from gateway.keystore import KeyStore
from tests.conftest import Scripted, scripted_env
from tests.support.fleet import REPO, Fleet
from tests.support.namespaces import new_namespace
from tests.support.store_auth import neo4j_env

SERVICES = ("gateway", "planner", "expert-worker", "merger", "codex-lineage")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO / ".data" / "artifacts" / "console"


@dataclass(frozen=True)
class ConsoleKeys:
    admin: str
    user: str
    tenant: str


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def console_fleet(infra: dict[str, str], scripted_server: Scripted) -> Iterator[Fleet]:
    fleetlib_api.ensure_up(["neo4j"])  # the graph page's statistics
    namespace = new_namespace("con")
    schema = ("audit_" + namespace.replace("-", "_"))[:63]
    env = {
        "MOE_TOPIC_NAMESPACE": namespace,
        "MOE_AUDIT_SCHEMA": schema,
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_NEO4J_URL": fleetlib_api.endpoints()["neo4j"], **neo4j_env(),
        "MOE_REQUEST_TIMEOUT_S": "45",
        "MOE_LOG_LEVEL": "INFO",
        **scripted_env(scripted_server.url),
        "MOE_ROUTER_ENABLED": "false",
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
        "MOE_SEMANTIC_CACHE_ENABLED": "false",
        "MOE_PLANNER_GRAPH_TASKS": "false",
        "MOE_EXACT_CACHE": "false",
    }
    fleet = Fleet(env, gateway_workers=2, extra=("codex-lineage",))
    for name in list(fleet.services):
        if name not in SERVICES:
            del fleet.services[name]
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()
        asyncio.run(_drop_schema(infra["postgres"], schema))


async def _keys(dsn: str, tenant: str) -> ConsoleKeys:
    store = await KeyStore.connect(dsn)
    try:
        admin = (await store.create("console-admin", "admin", [tenant]))[1]
        user = (await store.create("console-user", "user", [tenant]))[1]
    finally:
        await store.close()
    return ConsoleKeys(admin, user, tenant)


@pytest.fixture(scope="session")
def console_keys(infra: dict[str, str]) -> ConsoleKeys:
    return asyncio.run(_keys(infra["postgres"], new_namespace("ct")))


@pytest.fixture(scope="session")
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
