"""The expert templates page in the browser (issue 28: create, edit, assign model@endpoint): a tenant admin
creates a template of its tenant with models of the configured servers, sees it listed, edits it and sees the
change; a model no server serves is refused with the API's message and nothing is stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import SCRIPTED_MODELS
from tests.support.fleet import ServiceProcess
from tests.support.keys import new_keys
from tests.support.lone_service import lone_service

pytestmark = pytest.mark.e2e
SERVERS = [{"name": "local", "url": "http://127.0.0.1:9", "models": SCRIPTED_MODELS, "max_retries": 0}]


@pytest.fixture(scope="module")
def control_plane(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    """A control plane alone (its own Postgres role; the page reads and writes through its admin API)."""
    with lone_service("control-plane", infra, "ctp", MOE_OPA_URL=infra["opa"],
                      MOE_INFERENCE_SERVERS=json.dumps(SERVERS)) as service:
        yield service


def _models(browser: webdriver.Chrome, text: str) -> None:
    box = browser.find_element(By.ID, "template-models")
    box.clear()
    box.send_keys(text)


def test_a_tenant_admin_creates_edits_and_lists_a_template(control_plane: ServiceProcess, infra: dict[str, str],
                                                          browser: webdriver.Chrome, shots: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant, name = f"ctp-{tag}", f"coding-{tag}"
    [admin] = new_keys(infra["postgres"], ("template-admin", "admin", [tenant]))
    base = control_plane.url
    browser.get(f"{base}/console/login")
    browser.find_element(By.ID, "api-key").send_keys(admin)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 30).until(lambda d: "/console/login" not in d.current_url)

    browser.get(f"{base}/console/templates")
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "tenant-templates")))
    assert "expert-model@local" in browser.find_element(By.ID, "template-servers").text
    browser.find_element(By.CSS_SELECTOR, "details summary").click()

    # a model no server serves: the API's message, nothing listed
    browser.find_element(By.ID, "template-name").send_keys(name)
    _models(browser, "code_reviewer: no-such-model@local")
    browser.find_element(By.ID, "create-template").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "template-error")))
    assert "no-such-model" in browser.find_element(By.ID, "template-error").text
    assert name not in browser.find_element(By.ID, "tenant-templates").text

    _models(browser, "code_reviewer: expert-model@local, expert-model-b@local\njudge: judge-model@local")
    browser.find_element(By.ID, "template-description").send_keys("code first")
    browser.find_element(By.ID, "create-template").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, f"edit-{name}")))
    listed = browser.find_element(By.ID, "tenant-templates").text
    assert name in listed and tenant in listed and "code first" in listed
    assert "code_reviewer: expert-model@local, expert-model-b@local" in listed and "judge: judge-model@local" in listed
    browser.save_screenshot(str(shots / "40-templates.png"))

    browser.find_element(By.ID, f"edit-{name}").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "edit-template")))
    assert browser.find_element(By.ID, "template-models").get_attribute("value") == (
        "code_reviewer: expert-model@local, expert-model-b@local\njudge: judge-model@local")
    _models(browser, "code_reviewer: expert-model-b@local\nplanner: planner-model@local")
    browser.find_element(By.ID, "save-template").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "tenant-templates")))
    listed = browser.find_element(By.ID, "tenant-templates").text
    assert "code_reviewer: expert-model-b@local" in listed and "planner: planner-model@local" in listed
    assert "judge-model" not in listed and "expert-model@local" not in listed
    browser.save_screenshot(str(shots / "41-template-edited.png"))

    browser.find_element(By.ID, f"edit-{name}").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "delete-template")))
    browser.find_element(By.ID, "delete-template").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "tenant-templates")))
    assert name not in browser.find_element(By.ID, "tenant-templates").text
