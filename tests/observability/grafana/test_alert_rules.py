"""The fleet's Prometheus alert rules, checked and unit-tested with promtool (Debian's prometheus package)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "grafana" / "alerts" / "moe-fleet.rules.yaml"
RULE_TESTS = Path(__file__).with_name("alerts.test.yaml")
REQUIRED = {"MoEConsumerLag", "MoEGatewayErrorRate", "MoEDeadLetters", "MoEInferenceBreakerOpen", "MoEBudgetExhausted",
            "MoEPolicyEngineDown", "MoEKafkaAclRefused", "MoERecordLag", "MoEAuditCheckpointRefused"}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: the install step (fleetctl install) installs Debian's prometheus"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=RULE_TESTS.parent,
                          check=False)


def alert_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_rules_are_valid() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert alert_names() >= REQUIRED


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert tested == alert_names()
    firing = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert firing == alert_names(), "every alert must be shown to fire at least once"


def test_rules_behave_as_their_unit_tests_say() -> None:
    result = _run("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The harness can fail: the same tests with one expected value changed are refused."""
    text = RULE_TESTS.read_text().replace("../../grafana/alerts/", f"{RULES.parent}/")
    broken = tmp_path / "broken.test.yaml"
    broken.write_text(text.replace("is 180 records behind", "is 181 records behind"))
    assert text != broken.read_text()
    result = subprocess.run([promtool(), "test", "rules", str(broken)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode != 0


# --- runbooks ---------------------------------------------------------------------------------------------------

RUNBOOKS = REPO / "docs" / "runbooks.md"


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_runbook_entry_and_every_entry_an_alert() -> None:
    text = RUNBOOKS.read_text()
    entries = re.findall(r"^## (\S+)$", text, flags=re.MULTILINE)
    assert sorted(entries) == sorted(alert_names()), "docs/runbooks.md: one '## <alert>' entry per alert"
    for rule in _rules():
        assert rule["annotations"]["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}", rule["alert"]
    for entry in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        for part in ("**Means**", "**Check**", "**Do**"):
            assert part in entry, f"runbook entry {entry.split()[0]} lacks {part}"


# --- an idle, healthy default fleet fires nothing ---------------------------------------------------------------

def _steady(value: float, n: int = 40) -> str:
    return f"{value}+0x{n}"


def idle_fleet_series() -> list[dict[str, str]]:
    """What Prometheus scrapes from an idle, healthy default fleet: every service and OPA up, no lag, counters that
    do not move, every compliance rule passing or not applicable (a default install: no document register, no
    admin key yet), checkpoints made, the record caught up, every store up."""
    from moe_core.stage import registry

    series = [{"series": f'up{{job="{s.name}",instance="{s.name}:{s.port}"}}', "values": _steady(1)}
              for s in registry.FLEET]
    series += [{"series": 'up{job="opa",instance="opa:8181"}', "values": _steady(1)},
               {"series": 'up{job="prometheus",instance="localhost:9090"}', "values": _steady(1)}]
    series += [{"series": f'moe_consumer_lag_messages{{service="{s.name}",topic="moe.x.v1",partition="0"}}',
                "values": _steady(0)} for s in registry.FLEET]
    counters = ['moe_gateway_requests_total{endpoint="chat",mode="default",status="200"}',
                'moe_gateway_requests_total{endpoint="chat",mode="default",status="503"}',
                'moe_messages_dead_lettered_total{service="planner",topic="moe.requests.v1",error_type="x"}',
                'moe_inference_failovers_total{server="gpu-1",reason="timeout"}',
                'moe_gateway_limited_total{scope="key",limit="tokens_per_day"}',
                'moe_gateway_limited_total{scope="client",limit="failed_key_lookups_per_minute"}',
                'moe_audit_checkpoints_total{outcome="made"}', 'moe_audit_checkpoints_total{outcome="failed"}',
                'moe_audit_checkpoints_total{outcome="refused"}', 'moe_audit_checkpoints_total{outcome="unwitnessed"}',
                'moe_policy_decisions_total{action="knowledge_import",outcome="allowed"}',
                'moe_policy_decisions_total{action="knowledge_import",outcome="unavailable"}',
                'moe_kafka_refused_total{service="research",topic="moe.answers.v1",operation="write"}',
                'moe_lineage_records_total{stage="merger",topic="audit"}',
                'moe_egress_policy_reconciled_total{action="reapplied",cause="unapproved_put"}']
    series += [{"series": name, "values": _steady(3 if "200" in name or "made" in name else 0)} for name in counters]
    for path in sorted((REPO / "policy" / "compliance").glob("*.yaml")):
        framework = yaml.safe_load(path.read_text())
        for rule in framework["rules"]:
            status = -1 if rule["check"] in ("document_on_file", "key_expiry", "backups") else 1
            series.append({"series": f'moe_compliance_rule_status{{framework="{framework["framework"]}",'
                                     f'rule="{rule["id"]}"}}', "values": _steady(status)})
    series += [{"series": 'moe_data_health_runs{severity="ok"}', "values": _steady(4)},
               {"series": 'moe_data_health_runs{severity="crit"}', "values": _steady(0)},
               {"series": 'moe_data_health_signals{check="cache",severity="crit"}', "values": _steady(0)},
               {"series": 'moe_lineage_lag_seconds{topic="audit"}', "values": _steady(0.3)},
               {"series": 'moe_store_up{service="graph-rag",store="neo4j"}', "values": _steady(1)}]
    return series


def _idle_test(tmp_path: Path, series: list[dict[str, str]]) -> subprocess.CompletedProcess[str]:
    cases = [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": []}
             for minute in (5, 20, 39) for name in sorted(alert_names())]
    test = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"name": "an idle, healthy default fleet fires no alert", "interval": "1m",
                       "input_series": series, "alert_rule_test": cases}]}
    path = tmp_path / "idle-fleet.test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_an_idle_healthy_fleet_fires_no_alert(tmp_path: Path) -> None:
    result = _idle_test(tmp_path, idle_fleet_series())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_idle_check_can_fail(tmp_path: Path) -> None:
    """One service down in the same series: MoEServiceDown fires and the idle test says so."""
    series = idle_fleet_series()
    series[0] = {**series[0], "values": "1 1 0+0x38"}
    result = _idle_test(tmp_path, series)
    assert result.returncode != 0 and "MoEServiceDown" in result.stdout + result.stderr
