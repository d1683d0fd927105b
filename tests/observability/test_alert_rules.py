"""The fleet's Prometheus alert rules, checked and unit-tested with promtool (Debian's prometheus package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "grafana" / "alerts" / "moe-fleet.rules.yaml"
RULE_TESTS = Path(__file__).with_name("alerts.test.yaml")
REQUIRED = {"MoEConsumerLag", "MoEGatewayErrorRate", "MoEDeadLetters", "MoEInferenceBreakerOpen", "MoEBudgetExhausted"}


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
