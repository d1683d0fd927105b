"""The protected domains' file in the Helm chart (issue 50): policy/domain-keywords.yaml (each domain's words,
`protected`, `approvers`) in a ConfigMap, mounted with MOE_DOMAIN_KEYWORDS into exactly the components whose
settings read it and the gap-healer's CronJobs; an operator's file from values replaces it and rolls those pods (a
checksum annotation), the others keep their pod templates; a file that is not YAML, or has no domains, fails the
render. The operator's render is validated against the Kubernetes schemas (kubeconform, strict)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from moe_core.policy.domains import load_keywords
from moe_core.stage import registry as stage_registry
from moe_tools.docgen import settings_catalog
from tests.deploy.deploy_support import ANCHORS, CHART, REPO, helm, helm_template, rendered_docs, run
from tests.deploy.test_helm import kubeconform_check

pytestmark = pytest.mark.unit
MOUNT = "/etc/moe/domain-keywords"
FILE = f"{MOUNT}/domain-keywords.yaml"
SHIPPED = REPO / "policy" / "domain-keywords.yaml"
FINANCE = """version: 1
domains:
  finance:
    protected: true
    approvers: 3
    words: [iban, mortgage, securities]
  medical:
    words: [drug, dose]
"""


def _kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _operators_values(tmp_path: Path) -> str:
    path = tmp_path / "domains.yaml"
    path.write_text(json.dumps({"policy": {"domainKeywords": FINANCE}}))
    return str(path)


@functools.cache
def readers() -> frozenset[str]:
    """The fleet's services whose settings read MOE_DOMAIN_KEYWORDS, found in their code."""
    return frozenset(s.name for s in stage_registry.FLEET
                     if "MOE_DOMAIN_KEYWORDS" in settings_catalog.service(s.name, REPO))


def test_the_readers_are_the_services_that_send_domain_rules_and_the_planner() -> None:
    assert readers() == {"control-plane", "graph-ingest", "gap-healer", "planner"}


def test_the_shipped_file_is_mounted_into_exactly_the_services_that_read_it() -> None:
    docs = rendered_docs([])
    data = _kind(docs, "ConfigMap")["moe-domain-keywords"]["data"]
    assert data == {"domain-keywords.yaml": SHIPPED.read_text().rstrip("\n")}
    for name, deployment in _kind(docs, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        reads = name.removeprefix("moe-") in readers()
        assert (env.get("MOE_DOMAIN_KEYWORDS") == FILE) is reads, name
        assert ("domain-keywords" in mounts) is reads, name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"] or {}
        assert ("checksum/domain-keywords" in annotations) is reads, name
        if reads:
            assert mounts["domain-keywords"] == {"name": "domain-keywords", "mountPath": MOUNT, "readOnly": True}
            assert volumes["domain-keywords"]["configMap"] == {"name": "moe-domain-keywords"}


def test_an_operators_file_replaces_it_and_rolls_exactly_the_readers(tmp_path: Path) -> None:
    shipped, mine = rendered_docs([]), rendered_docs([_operators_values(tmp_path)])
    text = _kind(mine, "ConfigMap")["moe-domain-keywords"]["data"]["domain-keywords.yaml"]
    assert text == FINANCE.rstrip("\n")
    written = tmp_path / "mounted.yaml"
    written.write_text(text)
    rules = load_keywords(written).rules()  # what the services send OPA as input.domain_rules
    assert rules["finance"] == {"protected": True, "approvers": 3}
    assert rules["medical"]["protected"] is False
    before, after = _kind(shipped, "Deployment"), _kind(mine, "Deployment")
    for name in before:
        old, new = (d["spec"]["template"]["metadata"]["annotations"] or {} for d in (before[name], after[name]))
        assert old.get("checksum/env") == new.get("checksum/env"), name
        if name.removeprefix("moe-") in readers():
            assert old["checksum/domain-keywords"] != new["checksum/domain-keywords"], name
        else:
            assert before[name]["spec"]["template"] == after[name]["spec"]["template"], name
    code, out = kubeconform_check(helm_template([_operators_values(tmp_path)]), tmp_path)
    assert code == 0 and "Invalid: 0, Errors: 0, Skipped: 0" in out, out


def test_the_gap_healers_cron_jobs_read_the_same_file(tmp_path: Path) -> None:
    docs = rendered_docs(["ci/graph-cron-values.yaml", _operators_values(tmp_path)])
    jobs = _kind(docs, "CronJob")
    assert set(jobs) == {"moe-graph-lint", "moe-graph-heal"}
    for job in jobs.values():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert {e["name"]: e.get("value") for e in container["env"]}["MOE_DOMAIN_KEYWORDS"] == FILE
        assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["domain-keywords"] == MOUNT
        assert {v["name"]: v for v in pod["volumes"]}["domain-keywords"]["configMap"]["name"] == "moe-domain-keywords"


@pytest.mark.parametrize(("value", "message"), [
    ("domains: [medical", "policy.domainKeywords is not YAML"),
    ("version: 1\nwords: [iban]", "policy.domainKeywords has no `domains` mapping"),
])
def test_a_file_the_services_could_not_read_fails_the_render(value: str, message: str) -> None:
    result = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set-string", f"policy.domainKeywords={value}"])
    assert result.returncode != 0 and message in result.stderr, result.stderr
