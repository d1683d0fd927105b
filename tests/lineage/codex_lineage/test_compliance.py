"""Compliance checks as code against the live fleet (real broker, audit store, key table): the report lists every
rule of the rule files with its evidence; a topic's retention set below six months on the broker turns the
EU AI Act Art. 19 rule to fail, its metric to 0 and fires MoEComplianceRuleFailed in a real Prometheus loaded
with the fleet's alert rules; a broken rule file is refused on reload and the previous rules stay."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from moe_core.contracts.topics import Topics
from moe_core.runtime.kafka_clients import client_kwargs
from tests.lineage.conftest import Keys, LineageFleet
from tests.support.prometheus_server import running_prometheus

pytestmark = pytest.mark.e2e
DAY_MS = 86_400_000
ART19 = ("eu-ai-act", "art19-log-retention")
STATUSES = {"pass", "fail", "not_applicable"}
# Checks whose evidence the fleet's own traffic does not change between the report and reading /metrics (the
# periodic evaluation may run in between; chains, checkpoints and ingest runs grow while the fleet records).
STEADY = {"topic_retention", "writer_least_privilege", "document_on_file", "import_policy", "alert_rules"}


def _rule(report: dict[str, Any], framework: str, rule: str) -> dict[str, Any]:
    fw = next(f for f in report["frameworks"] if f["framework"] == framework)
    return next(r for r in fw["rules"] if r["id"] == rule)


def _set_retention(bootstrap: str, topic: str, days: int, **extra: str) -> None:
    """The topic's configs (AlterConfigs replaces them all): retention.ms and `extra` (dots as underscores)."""
    configs = {"retention.ms": str(days * DAY_MS), **{k.replace("_", "."): v for k, v in extra.items()}}

    async def alter() -> None:
        admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
        await admin.start()
        try:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
        finally:
            await admin.close()

    asyncio.run(alter())


def _wait_rule(fleet: LineageFleet, key: str, status: str, timeout_s: float = 60) -> dict[str, Any]:
    """The Art. 19 rule once it has `status` (the broker applies config changes asynchronously)."""
    end, rule = time.monotonic() + timeout_s, {}
    while time.monotonic() < end:
        rule = _rule(fleet.get("/v1/compliance/report", key, framework="eu-ai-act").json(), *ART19)
        if rule["status"] == status:
            return rule
        time.sleep(0.5)
    raise AssertionError(f"art19 stayed {rule.get('status')}: {rule}")


def _metric(fleet: LineageFleet, framework: str, rule: str) -> float | None:
    text = httpx.get(f"{fleet.lineage}/metrics", timeout=10).text
    prefix = f'moe_compliance_rule_status{{framework="{framework}",rule="{rule}"}} '
    line = next((ln for ln in text.splitlines() if ln.startswith(prefix)), None)
    return float(line[len(prefix):]) if line else None


@pytest.fixture
def audit_topic(lineage_fleet: LineageFleet) -> Iterator[str]:
    """The fleet's audit topic; its retention is put back to the default (365 days) afterwards."""
    topic = Topics.for_namespace(lineage_fleet.env["MOE_TOPIC_NAMESPACE"]).audit
    yield topic
    _set_retention(lineage_fleet.env["MOE_KAFKA_BOOTSTRAP"], topic, 365)


def test_the_report_lists_every_rule_with_its_evidence(lineage_fleet: LineageFleet, keys: Keys) -> None:
    response = lineage_fleet.get("/v1/compliance/report", keys.admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rules_error"] is None
    files = {yaml.safe_load(p.read_text())["framework"]: yaml.safe_load(p.read_text())
             for p in lineage_fleet.rules.glob("*.yaml")}
    assert {f["framework"] for f in report["frameworks"]} == set(files)
    for fw in report["frameworks"]:
        assert [r["id"] for r in fw["rules"]] == [r["id"] for r in files[fw["framework"]]["rules"]]
        for rule in fw["rules"]:
            assert rule["status"] in STATUSES and rule["summary"], rule
            assert rule["evidence"].get("source") or rule["evidence"].get("document"), rule
            value = {"pass": 1, "fail": 0, "not_applicable": -1}[rule["status"]]
            if rule["check"] in STEADY:
                assert _metric(lineage_fleet, fw["framework"], rule["id"]) == value, rule
            else:
                assert _metric(lineage_fleet, fw["framework"], rule["id"]) in (1, 0, -1), rule
    assert sum(report["summary"].values()) == sum(len(f["rules"]) for f in files.values())
    topics = Topics.for_namespace(lineage_fleet.env["MOE_TOPIC_NAMESPACE"])
    art19 = _rule(report, *ART19)
    assert art19["status"] == "pass", art19
    assert art19["evidence"]["topics"] == {topics.audit: 365, topics.deadletter: 365, topics.audit_checkpoints: -1}
    assert lineage_fleet.env["MOE_KAFKA_BOOTSTRAP"] in art19["evidence"]["source"]
    # evidence from the record and the key table: the fleet's writer role cannot change the log; no DPIA register
    assert _rule(report, "eu-ai-act", "art12-integrity")["status"] == "pass"
    assert _rule(report, "eu-ai-act", "art12-integrity")["evidence"]["role"] == "moe_codex_lineage"
    # no document register on a default install: not applicable (no alert fires), not a pass
    assert _rule(report, "dsgvo", "art35-dpia")["status"] == "not_applicable"
    assert _rule(report, "dsgvo", "art30-erasure-time-limits")["status"] == "pass"
    markdown = lineage_fleet.get("/v1/compliance/report", keys.admin, format="markdown")
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert "| art19-log-retention: " in markdown.text and f'"{topics.audit}": 365' in markdown.text
    page = lineage_fleet.get("/v1/compliance/report", keys.admin, format="html")
    assert page.status_code == 200 and "art19-log-retention" in page.text and "<table>" in page.text


def test_retention_below_six_months_fails_article_19_and_fires_the_alert(
        lineage_fleet: LineageFleet, keys: Keys, audit_topic: str) -> None:
    port = lineage_fleet.fleet["codex-lineage"].port
    with running_prometheus(Path(tempfile.mkdtemp(prefix="prom-compliance-")),
                            {"codex-lineage": [f"127.0.0.1:{port}"]}) as prom:
        firing = ('ALERTS{alertname="MoEComplianceRuleFailed",alertstate="firing",'
                  'framework="eu-ai-act",rule="art19-log-retention"}')
        assert _wait_rule(lineage_fleet, keys.admin, "pass")["status"] == "pass"
        prom.wait_at_least('moe_compliance_rule_status{framework="eu-ai-act",rule="art19-log-retention"}', 1)
        assert prom.query(firing) == []
        _set_retention(lineage_fleet.env["MOE_KAFKA_BOOTSTRAP"], audit_topic, 90)
        rule = _wait_rule(lineage_fleet, keys.admin, "fail")
        assert rule["evidence"]["topics"][audit_topic] == 90
        assert rule["evidence"]["violations"] == [f"{audit_topic}: 90 days < 183"]
        assert _metric(lineage_fleet, *ART19) == 0
        assert prom.wait_at_least(f"count({firing})", 1) == 1
        _set_retention(lineage_fleet.env["MOE_KAFKA_BOOTSTRAP"], audit_topic, 365)
        assert _wait_rule(lineage_fleet, keys.admin, "pass")["evidence"]["topics"][audit_topic] == 365


def test_a_size_limit_on_the_audit_topic_fails_article_19(
        lineage_fleet: LineageFleet, keys: Keys, audit_topic: str) -> None:
    """A year of retention is not six months of logs when a size limit may delete them earlier."""
    _set_retention(lineage_fleet.env["MOE_KAFKA_BOOTSTRAP"], audit_topic, 365, retention_bytes=str(1 << 30))
    rule = _wait_rule(lineage_fleet, keys.admin, "fail")
    assert rule["evidence"]["topics"][audit_topic] == 365
    assert rule["evidence"]["size_limited"] == {audit_topic: 1 << 30}
    assert rule["evidence"]["violations"] == [
        f"{audit_topic}: retention.bytes={1 << 30} may delete messages before 183 days"]


def test_a_broken_rule_file_is_refused_on_reload_and_the_previous_rules_stay(
        lineage_fleet: LineageFleet, keys: Keys) -> None:
    path = lineage_fleet.rules / "dora.yaml"
    good = path.read_text()
    try:
        path.write_text(good.replace("    check: backups\n", "    check: backups\n  oops: [\n", 1))
        reload = httpx.post(f"{lineage_fleet.lineage}/v1/compliance/rules/reload",
                            headers={"Authorization": f"Bearer {keys.admin}"}, timeout=30)
        assert reload.status_code == 400
        error = reload.json()["error"]
        assert error["code"] == "invalid_rules" and f"{path}:" in error["message"]
        assert "previous rules stay" in error["message"]
        report = lineage_fleet.get("/v1/compliance/report", keys.admin, framework="dora").json()
        assert report["rules_error"] and f"{path}:" in report["rules_error"]
        assert [r["id"] for r in report["frameworks"][0]["rules"]] == [
            r["id"] for r in yaml.safe_load(good)["rules"]]
    finally:
        path.write_text(good)
    reload = httpx.post(f"{lineage_fleet.lineage}/v1/compliance/rules/reload",
                        headers={"Authorization": f"Bearer {keys.admin}"}, timeout=30)
    assert reload.status_code == 200 and "dora" in reload.json()["frameworks"]
    assert lineage_fleet.get("/v1/compliance/report", keys.admin, framework="dora").json()["rules_error"] is None


def test_bad_input_gets_the_apis_envelope(lineage_fleet: LineageFleet, keys: Keys) -> None:
    cases = [(None, {}, 401, "invalid_api_key"), (keys.user, {}, 403, "insufficient_role"),
             (keys.admin, {"framework": "sox"}, 404, "not_found"),
             (keys.admin, {"format": "pdf"}, 400, "invalid_value")]
    for key, params, status, code in cases:
        response = lineage_fleet.get("/v1/compliance/report", key, **params)
        assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    listed = lineage_fleet.get("/v1/compliance/frameworks", keys.admin).json()
    assert {f["framework"] for f in listed["data"]} >= {"eu-ai-act", "dsgvo", "nis2", "dora", "bsi-grundschutz"}


def test_the_fleets_report_and_its_rules_are_the_operators(lineage_fleet: LineageFleet, keys: Keys) -> None:
    """The report names every tenant's chains, imports and requests: a tenant admin gets 403 for it and for a
    reload, and reads the rules themselves."""
    report = lineage_fleet.get("/v1/compliance/report", keys.tenant_admin)
    assert report.status_code == 403 and report.json()["error"]["code"] == "operator_only", report.text
    reload = httpx.post(f"{lineage_fleet.lineage}/v1/compliance/rules/reload",
                        headers={"Authorization": f"Bearer {keys.tenant_admin}"}, timeout=30)
    assert reload.status_code == 403 and reload.json()["error"]["code"] == "operator_only", reload.text
    rules = lineage_fleet.get("/v1/compliance/frameworks", keys.tenant_admin)
    assert rules.status_code == 200 and rules.json()["data"], rules.text
    assert lineage_fleet.get("/v1/compliance/report", keys.admin).status_code == 200


def _change_set(tenant: str, cs: str, importer: str, approvers: list[str], digest: str | None) -> list[Any]:
    from moe_core.knowledge.graph.audit import audit_event

    created = {"approvals_required": 2, "summary": {}, **({"policy_digest": digest} if digest else {})}
    return [audit_event(None, actor=importer, action="knowledge_import_created", subject=cs, tenant=tenant,
                        response_id=cs, details=created),
            *[audit_event(None, actor=a, action="knowledge_import_approved", subject=cs, tenant=tenant,
                          response_id=cs, details={"approvals": i + 1}) for i, a in enumerate(approvers)],
            audit_event(None, actor=approvers[-1], action="knowledge_import_applied", subject=cs, tenant=tenant,
                        response_id=cs, details={"entities_created": 0, "relations_written": 0})]


def test_approval_coverage_policy_versions_and_anchoring_are_read_from_the_record(
        lineage_fleet: LineageFleet, keys: Keys) -> None:
    """Imports recorded in the audit chain: one approved by two other admin keys, one whose importer approved it
    himself and which names no policy version; the chain gets RFC 3161-anchored checkpoints (every second)."""
    import uuid

    tenant = f"{keys.tenant}-imports"
    good, bad = f"kcs-{uuid.uuid4().hex}", f"kcs-{uuid.uuid4().hex}"
    lineage_fleet.publish_audit([*_change_set(tenant, good, "key:imp", ["key:b", "key:c"], "sha256:" + "ab" * 32),
                                 *_change_set(tenant, bad, "key:imp", ["key:imp", "key:b"], None)])
    end, report = time.monotonic() + 90, {}
    while time.monotonic() < end:
        report = lineage_fleet.get("/v1/compliance/report", keys.admin, framework="eu-ai-act").json()
        coverage = _rule(report, "eu-ai-act", "art14-approval-coverage")
        anchoring = _rule(report, "eu-ai-act", "art12-anchoring")
        if bad in coverage["evidence"].get("uncovered", []) and tenant in anchoring["evidence"]["tenants"] \
                and anchoring["status"] == "pass":
            break
        time.sleep(0.5)
    coverage = _rule(report, "eu-ai-act", "art14-approval-coverage")
    assert coverage["status"] == "fail" and bad in coverage["evidence"]["uncovered"], coverage
    assert good not in coverage["evidence"]["uncovered"]
    row = next(r for r in coverage["evidence"]["change_sets"] if r["id"] == bad)
    assert row["self_approved"] and row["approvals"] == 1 and row["approvals_required"] == 2
    versions = _rule(report, "eu-ai-act", "art12-policy-versions")
    assert versions["status"] == "fail" and bad in versions["evidence"]["without_version"]
    assert versions["evidence"]["versions_used"]["sha256:" + "ab" * 32] >= 1
    assert versions["evidence"]["policy_in_force"].startswith("sha256:")
    anchoring = _rule(report, "eu-ai-act", "art12-anchoring")
    assert anchoring["status"] == "pass", anchoring
    assert anchoring["evidence"]["tenants"][tenant]["latest_timestamped"]
    assert _rule(report, "eu-ai-act", "art12-record-keeping")["status"] == "pass"
