"""The compliance rule files: the repository's parse and cover the frameworks; a broken file is refused naming
its line; on reload the previous rules stay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codex_lineage.compliance import render
from codex_lineage.compliance.checks import CHECKS, NAMES
from codex_lineage.compliance.engine import Compliance
from codex_lineage.compliance.rules import RulesError, load_all, parse

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "policy" / "compliance"
GOOD = """framework: demo
title: Demo
version: 1
rules:
  - id: r1
    ref: Art. 1
    title: One
    check: topic_retention
    params: {topics: [audit], min_days: 183}
"""


def test_the_repository_rules_cover_the_frameworks_and_name_known_checks() -> None:
    sets = {s.framework: s for s in load_all(RULES, NAMES)}
    assert set(sets) == {"eu-ai-act", "dsgvo", "nis2", "dora", "bsi-grundschutz"}
    refs = " ".join(r.ref for r in sets["eu-ai-act"].rules)
    for article in ("Art. 9", "Art. 12", "Art. 14", "Art. 19", "Art. 26"):
        assert article in refs
    assert all(any(a in r.ref for r in sets["dsgvo"].rules) for a in ("Art. 30", "Art. 35"))
    assert any("Art. 11" in r.ref for r in sets["dora"].rules)
    used = {r.check for s in sets.values() for r in s.rules}
    assert used == set(CHECKS), f"checks no rule uses: {set(CHECKS) - used}"
    art19 = next(r for r in sets["eu-ai-act"].rules if r.id == "art19-log-retention")
    assert art19.check == "topic_retention" and art19.params["min_days"] == 183


@pytest.mark.parametrize(("text", "line", "words"), [
    (GOOD.replace("    title: One\n", "    title: One: two\n"), 7, "not valid YAML: mapping values are not allowed"),
    (GOOD.replace("    title: One\n", "    title: [One\n"), 8, "while parsing a flow sequence at line 7"),
    (GOOD.replace("check: topic_retention", "check: no_such_check"), 5, "unknown check 'no_such_check'"),
    (GOOD.replace("    ref: Art. 1\n", ""), 5, "rules.0.ref"),
    (GOOD + "  - id: r1\n    ref: x\n    title: t\n    check: backups\n", 10, "defined twice"),
    (GOOD.replace("version: 1", "version: one"), 1, "version"),
])
def test_a_broken_rule_file_is_refused_with_its_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        parse(path, NAMES)
    assert f"{path}:{line}:" in str(err.value), str(err.value)
    assert words in str(err.value)


def test_a_broken_file_stops_the_start_and_a_broken_reload_keeps_the_previous_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    engine = Compliance(rules)
    before = [s.framework for s in engine.rule_sets]
    (rules / "eu-ai-act.yaml").write_text((RULES / "eu-ai-act.yaml").read_text().replace(
        "check: topic_retention", "check: topic_retention_typo", 1))
    with pytest.raises(RulesError) as err:
        engine.reload()
    assert "eu-ai-act.yaml:" in str(err.value) and "topic_retention_typo" in str(err.value)
    assert [s.framework for s in engine.rule_sets] == before and engine.rules_error
    assert any(r.check == "topic_retention" for r in engine.framework("eu-ai-act").rules)  # type: ignore[union-attr]
    with pytest.raises(RulesError):
        Compliance(rules)  # the same file at start: refused
    (rules / "eu-ai-act.yaml").write_text((RULES / "eu-ai-act.yaml").read_text())
    (rules / "nis2.yaml").unlink()
    assert engine.reload() and engine.framework("nis2") is None and not engine.rules_error


def test_the_human_readable_exports_carry_every_rule_and_its_evidence() -> None:
    report = {"generated_at": "2026-11-23T10:00:00Z", "summary": {"pass": 1, "fail": 1, "not_applicable": 0},
              "rules_error": None, "frameworks": [{
                  "framework": "demo", "title": "Demo <law>", "version": 1, "source": "x.yaml", "digest": "sha256:0",
                  "rules": [{"id": "r1", "ref": "Art. 1", "title": "One", "requirement": "", "check": "backups",
                             "params": {}, "status": "pass", "summary": "fine", "evidence": {"archived": 3}},
                            {"id": "r2", "ref": "Art. 2", "title": "Two", "requirement": "", "check": "backups",
                             "params": {}, "status": "fail", "summary": "a|b", "evidence": {"topic": "<t>"}}]}]}
    md = render.markdown(report)
    assert "| r1: One | Art. 1 | **PASS** | fine |" in md and "**FAIL** | a\\|b |" in md
    assert '{"archived": 3}' in md
    page = render.to_html(report)
    assert "Demo &lt;law&gt;" in page and "&lt;t&gt;" in page and "<law>" not in page


def test_the_service_refuses_to_start_on_a_broken_rule_file_naming_its_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    shutil.copytree(RULES, tmp_path / "rules")
    broken = tmp_path / "rules" / "nis2.yaml"
    broken.write_text(broken.read_text().replace("    check: backups\n", "    check: backups\n  - [\n", 1))
    env = {**os.environ, "MOE_COMPLIANCE_RULES_DIR": str(tmp_path / "rules"), "MOE_HTTP_PORT": "1"}
    done = subprocess.run([sys.executable, "-m", "codex_lineage"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert f"compliance rules refused: {broken}:" in done.stderr and "Traceback" not in done.stderr


async def test_evidence_that_cannot_be_gathered_fails_the_rule_saying_why(tmp_path: Path) -> None:
    from codex_lineage.compliance.sources import Sources
    from codex_lineage.settings import LineageSettings
    from moe_core.contracts.topics import Topics

    (tmp_path / "demo.yaml").write_text(GOOD + GOOD[GOOD.index("  - id"):].replace("id: r1", "id: r2"))
    engine = Compliance(tmp_path)

    async def no_drift(hours: float) -> dict[str, object]:
        raise AssertionError("not asked")

    sources = Sources(LineageSettings(kafka_bootstrap="127.0.0.1:9"), Topics.for_namespace("nowhere"),
                      None, None, no_drift)  # type: ignore[arg-type]
    report = await engine.evaluate(sources)
    rules = report["frameworks"][0]["rules"]
    assert [r["status"] for r in rules] == ["fail", "fail"] and report["summary"]["fail"] == 2
    assert all(r["summary"].startswith("the evidence could not be gathered: ") for r in rules)
    assert "error" in rules[0]["evidence"]


async def test_a_deployment_allowed_to_run_unanchored_fails_the_anchoring_rules_saying_so() -> None:
    """Helm's audit.allowUnanchored (MOE_AUDIT_ALLOW_UNANCHORED) is never a pass, even before any chain exists and
    even with a timestamp authority set: the report names the setting."""
    from codex_lineage.compliance.checks_record import checkpoints_anchored
    from codex_lineage.compliance.sources import Sources
    from codex_lineage.settings import LineageSettings
    from moe_core.contracts.topics import Topics

    async def no_drift(hours: float) -> dict[str, object]:
        raise AssertionError("not asked")

    for tsa in ("", "http://tsa.example:3000/api/v1/timestamp"):
        settings = LineageSettings(kafka_bootstrap="127.0.0.1:9", audit_allow_unanchored=True, audit_tsa_url=tsa)
        sources = Sources(settings, Topics.for_namespace("nowhere"), None, None, no_drift)  # type: ignore[arg-type]
        outcome = await checkpoints_anchored(sources, {"max_age_hours": 2})
        assert outcome.status == "fail" and "audit.allowUnanchored" in outcome.summary, outcome
        assert outcome.evidence["allow_unanchored"] is True
