"""The Rego policies in policy/opa: their own `opa test` suite run through the built binary, the approvals they
ask matching what policy/knowledge-imports.yaml declares (codex-lineage's compliance evidence reads it), and the
domain words the control plane resolves a change's domains with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control_plane.knowledge.policy import load_policy
from control_plane.policy.api import files_version
from moe_core.knowledge.graph.vocab import DOMAINS, RELATION_SET
from moe_core.policy.domains import load_keywords, resolve_text
from tests.support import opa

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[4]


def test_the_policies_pass_their_own_tests_and_are_formatted() -> None:
    tested = opa.run("test", "--format", "json", str(opa.POLICY_DIR))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    results = json.loads(tested.stdout)
    assert len(results) >= 20 and all(r.get("pass", not r.get("fail")) and not r.get("error") for r in results)
    assert {r["package"] for r in results} == {"data.moe.admin_test", "data.moe.config_test", "data.moe.egress_test",
                                               "data.moe.domains_test",
                                               "data.moe.knowledge_test",
                                               "data.moe.memory_test", "data.moe.quarantine_test",
                                               "data.moe.guardrails_test", "data.moe.policy_changes_test"}
    fmt = opa.run("fmt", "--list", "--fail", str(opa.POLICY_DIR))
    assert fmt.returncode == 0, f"not formatted (opa fmt -w policy/opa): {fmt.stdout}"
    strict = opa.run("check", "--strict", str(opa.POLICY_DIR))
    assert strict.returncode == 0, strict.stdout + strict.stderr


def _required(rules: object, domains: list[str]) -> list[object]:
    """data.moe.domains.required(d) for each domain, with `rules` as input.domain_rules (None: no rules sent)."""
    inp = {} if rules is None else {"domain_rules": rules}
    query = "[" + ", ".join(f"data.moe.domains.required({json.dumps(d)})" for d in domains) + "]"
    evaluated = opa.run("eval", "--format", "json", "--data", str(opa.POLICY_DIR / "domains.rego"),
                        f"{query} with input as {json.dumps(inp)}")
    assert evaluated.returncode == 0, evaluated.stderr
    return list(json.loads(evaluated.stdout)["result"][0]["expressions"][0]["value"])


def test_the_approvals_the_policy_asks_are_the_declared_ones() -> None:
    """The approvals domains.rego asks for the rules the services send from policy/domain-keywords.yaml are what
    policy/knowledge-imports.yaml declares (codex-lineage's compliance evidence reads it)."""
    declared = load_policy(REPO / "policy" / "knowledge-imports.yaml")
    rules = load_keywords(REPO / "policy" / "domain-keywords.yaml").rules()
    expected = [(declared.rule(d).approvers if declared.rule(d).approval_required else 0) for d in DOMAINS]
    assert _required(rules, list(DOMAINS)) == expected


def test_the_rego_tests_use_the_rules_the_shipped_file_gives() -> None:
    evaluated = opa.run("eval", "--format", "json", "--data", str(opa.POLICY_DIR), "data.moe.domains_test.shipped")
    assert evaluated.returncode == 0, evaluated.stderr
    shipped = json.loads(evaluated.stdout)["result"][0]["expressions"][0]["value"]
    assert shipped == load_keywords(REPO / "policy" / "domain-keywords.yaml").rules()


def test_protected_domains_are_data_and_missing_data_never_lowers_approvals(tmp_path: Path) -> None:
    text = (REPO / "policy" / "domain-keywords.yaml").read_text()
    edited = text.replace("  legal:\n    protected: true\n    approvers: 2\n", "  legal:\n") + (
        "  finance:\n    protected: true\n    words: [iban, loan, credit]\n")
    assert edited != text
    (tmp_path / "k.yaml").write_text(edited)
    rules = load_keywords(tmp_path / "k.yaml").rules()
    assert _required(rules, ["finance", "legal", "medical"]) == [2, 1, 2]  # no Rego edited
    assert _required(None, ["medical", "math", "technical"]) == [2, 2, 2]  # no rules sent: all protected
    assert _required({"math": {"approvers": 0}}, ["math", "finance"]) == [0, 2]  # not described: protected


def test_the_domain_words_name_known_domains_and_relations() -> None:
    words = load_keywords(REPO / "policy" / "domain-keywords.yaml")
    assert set(words.domains) <= set(DOMAINS)
    assert {r for rule in words.domains.values() for r in rule.relations} <= RELATION_SET
    assert words.of_relation("TREATS") == {"medical"} and words.of_relation("IS_A") == set()
    assert words.of_words("Glimmer Syndromes") == {"medical"}  # a whole word, plural folded
    assert words.of_words("Zorn Kernel") == set() and words.of_words("Syndromeless") == set()
    assert resolve_text("The statute regulates the dosage of a drug.", words) == ["legal", "medical"]
    # all of a text, not a name's first 120 characters (a neutral preamble hid a medical document from review)
    preamble = "This handbook was written by the night shift team of ward seven for new colleagues. " * 5
    assert resolve_text(preamble + "Give the drug at the dose on the chart.", words) == ["medical"]


def test_the_version_of_the_files_is_the_digest_of_their_names_and_texts(tmp_path: Path) -> None:
    for name in ("a.rego", "b.rego", "a_test.rego"):
        (tmp_path / name).write_text(f"package {name[0]}\n")
    first = files_version(tmp_path)
    assert first is not None and first.modules == ("a.rego", "b.rego")  # tests are not loaded by OPA
    (tmp_path / "a_test.rego").write_text("package changed\n")
    assert files_version(tmp_path) == first
    (tmp_path / "b.rego").write_text("package b\n# a comment\n")
    second = files_version(tmp_path)
    assert second is not None and second.digest != first.digest
    assert files_version(tmp_path / "missing") is None
