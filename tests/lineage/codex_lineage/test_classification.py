"""Data classes on the real fleet: a tenant whose requests are personal data (the data-class file, changed while
codex-lineage runs) asks one question; its lineage is classified, the evidence bundle says so, and the DSGVO
rule art32-data-class-flow fails while the model that answered is not allowed for personal data and passes once
it is. The catalog shows every entry's class."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import Keys, LineageFleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
RULE = ("dsgvo", "art32-data-class-flow")


@pytest.fixture(scope="module")
def personal(lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> Iterator[dict[str, str]]:
    """One recorded request of a tenant the data-class file calls personal; only the planner's model is allowed for
    personal data (the file is put back afterwards)."""
    original = lineage_fleet.classes.read_text()
    tenant = new_namespace("clinic")
    lineage_fleet.classes.write_text(original.replace("tenants: {}", f"tenants: {{{tenant}: personal}}")
                                     .replace('models: ["*"]', 'models: ["-/planner-model"]'))
    [key] = new_keys(infra["postgres"], ("classified", "user", [tenant]))
    marker = f"C{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": marker, "reply": plan_reply(("general", f"Explain fever {marker}"))},
        {"model": "expert-model", "contains": f"Explain fever {marker}", "reply": "Rest.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": marker, "reply": f"Rest and fluids ({marker})."}])
    client = openai.OpenAI(base_url=f"{lineage_fleet.gateway}/v1", api_key=key, max_retries=0, timeout=60)
    reply = client.chat.completions.create(model="moe-orchestrator",
                                           messages=[{"role": "user", "content": f"Fever? {marker}"}])
    lineage_fleet.wait_settled(tenant)
    try:
        yield {"tenant": tenant, "rid": reply.id.removeprefix("chatcmpl-"), "original": original, "key": key}
    finally:
        lineage_fleet.classes.write_text(original)


def _rule(fleet: LineageFleet, key: str) -> dict[str, Any]:
    report = fleet.get("/v1/compliance/report", key, framework=RULE[0]).json()
    return next(r for f in report["frameworks"] for r in f["rules"] if r["id"] == RULE[1])


def test_a_personal_request_is_classified_in_its_lineage_and_evidence(lineage_fleet: LineageFleet,
                                                                     personal: dict[str, str], keys: Keys) -> None:
    read = httpx.get(f"{lineage_fleet.control_plane}/v1/lineage/{personal['rid']}",  # the one lineage read API
                     headers={"Authorization": f"Bearer {personal['key']}"}, timeout=10)  # the tenant's own key
    assert read.status_code == 200, read.text
    found = read.json()["classification"]
    assert (found["tenant_id"], found["class"], found["marking"]) == (personal["tenant"], "personal",
                                                                       "SCHUTZBEDUERFTIG")
    assert found["source"] == f"tenant policy ({personal['tenant']})"
    assert "scripted/expert-model" in found["models"] and any(".requests." in d for d in found["datasets"])
    assert found["findings"] == ["model scripted/expert-model is not allowed for personal data"]
    old = lineage_fleet.get("/api/v1/lineage", keys.admin, response_id=personal["rid"])  # deprecated, same answer
    assert old.headers["Deprecation"] == "true" and f"</v1/lineage/{personal['rid']}>" in old.headers["Link"]
    assert old.json()["classification"] == found and old.json()["events"] == read.json()["events"]
    bundle = lineage_fleet.get("/v1/evidence", keys.admin, response_id=personal["rid"])
    assert bundle.status_code == 200, bundle.text
    with tarfile.open(fileobj=io.BytesIO(bundle.content)) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/classification.json"))
        stated = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    [request] = stated["requests"]
    assert (request["response_id"], request["class"], request["findings"]) == (
        personal["rid"], "personal", found["findings"])


def test_the_data_class_rule_fails_on_a_forbidden_model_and_passes_when_it_is_allowed(
        lineage_fleet: LineageFleet, personal: dict[str, str], keys: Keys) -> None:
    rule = _rule(lineage_fleet, keys.admin)
    assert rule["status"] == "fail", rule
    flagged = {f["response_id"]: f for f in rule["evidence"]["findings"]}
    assert flagged[personal["rid"]]["findings"] == ["model scripted/expert-model is not allowed for personal data"]
    lineage_fleet.classes.write_text(personal["original"].replace("tenants: {}",
                                                                  f"tenants: {{{personal['tenant']}: personal}}"))
    rule = _rule(lineage_fleet, keys.admin)
    assert rule["status"] == "pass" and rule["evidence"]["requests"] >= 1, rule


def test_the_catalog_shows_each_entrys_class(lineage_fleet: LineageFleet, keys: Keys) -> None:
    personal = lineage_fleet.get("/v1/catalog", keys.admin, classification="personal").json()["data"]
    names = {e["name"] for e in personal}
    requests = next(n for n in names if n.endswith(".requests.v1"))
    assert "semantic-cache" in names and all(e["classification"]["marking"] == "SCHUTZBEDUERFTIG" for e in personal)
    entry = lineage_fleet.get(f"/v1/catalog/{personal[0]['id']}", keys.admin).json()
    assert entry["classification"]["class"] == "personal" and requests
    keys_table = lineage_fleet.get("/v1/catalog", keys.admin, q="api_keys", kind="table").json()["data"]
    assert keys_table and all(e["classification"]["class"] == "confidential" for e in keys_table)
    bad = lineage_fleet.get("/v1/catalog", keys.admin, classification="secret")
    assert bad.status_code == 400 and "classification must be one of" in bad.json()["error"]["message"]
