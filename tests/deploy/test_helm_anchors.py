"""The chart carries the audit record's anchors (issue 47, item 6): without a timestamp authority and a witness it
refuses to render, naming what is missing, unless audit.allowUnanchored says so on purpose (which codex-lineage's
compliance report then fails); codex-lineage gets the TSA, the witness and its vkey, the keyring and a checkpoint file
on a volume that outlives it; the control plane verifies with the public key, the keyring, the TSA chain and the
witness's vkey (a ConfigMap: all public); the witness may reach codex-lineage's list of logs through the
NetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_support import ANCHORS, CHART, helm, load_yaml, rendered_docs, run

pytestmark = pytest.mark.unit
ANCHOR_VALUES = load_yaml(CHART / "ci" / "anchors-values.yaml")["audit"]


def _pod(docs: list[dict[str, Any]], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    [dep] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"moe-{name}"]
    spec = dep["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def _mounts(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    volumes = {v["name"]: v for v in spec["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}


def test_without_anchors_the_chart_refuses_to_render_naming_them() -> None:
    done = run([helm(), "template", "moe", str(CHART)])
    assert done.returncode != 0
    for name in ("audit.tsaUrl", "audit.tsaChain", "audit.witnessUrl", "audit.witnessKey", "audit.allowUnanchored"):
        assert name in done.stderr, (name, done.stderr)
    half = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "audit.witnessUrl="])
    assert half.returncode != 0 and "set audit.witnessUrl" in half.stderr and "audit.tsaUrl" not in half.stderr
    keyless = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "audit.publicKey="])
    assert keyless.returncode != 0 and "audit.publicKey is required" in keyless.stderr


def test_allow_unanchored_renders_and_tells_codex_lineage_so() -> None:
    docs = rendered_docs([], ["audit.allowUnanchored=true", "audit.tsaUrl=", "audit.tsaChain=", "audit.witnessUrl=",
                              "audit.witnessKey="])
    _, container = _pod(docs, "codex-lineage")
    env = _env(container)
    assert env["MOE_AUDIT_ALLOW_UNANCHORED"] == "true" and env["MOE_AUDIT_TSA_URL"] == ""
    assert "MOE_AUDIT_WITNESS_KEY" not in env
    anchored = _env(_pod(rendered_docs([]), "codex-lineage")[1])
    assert anchored["MOE_AUDIT_ALLOW_UNANCHORED"] == "false"


def test_codex_lineage_gets_every_anchor_and_its_checkpoint_volume() -> None:
    docs = rendered_docs([])
    spec, container = _pod(docs, "codex-lineage")
    env, mounts = _env(container), _mounts(spec, container)
    assert env["MOE_AUDIT_TSA_URL"] == ANCHOR_VALUES["tsaUrl"]
    assert env["MOE_AUDIT_WITNESS_URL"] == ANCHOR_VALUES["witnessUrl"]
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "moe-audit-anchors"]
    files = {"MOE_AUDIT_WITNESS_KEY": ("witness.vkey", "witnessKey"),
             "MOE_AUDIT_TSA_CHAIN": ("tsa-chain.pem", "tsaChain"),
             "MOE_AUDIT_KEYRING": ("audit-keyring.json", "keyring")}
    for var, (key, value) in files.items():
        assert env[var] == f"/etc/moe/audit/{key}", var
        assert cm["data"][key] == ANCHOR_VALUES[value], key
    assert mounts["/etc/moe/audit"]["configMap"]["name"] == "moe-audit-anchors"
    checkpoint_dir = env["MOE_AUDIT_CHECKPOINT_FILE"].rsplit("/", 1)[0]
    claim = mounts[checkpoint_dir]["persistentVolumeClaim"]["claimName"]
    [pvc] = [d for d in docs if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    [dep] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "moe-codex-lineage"]
    assert dep["spec"]["strategy"] == {"type": "Recreate"}  # a ReadWriteOnce volume: never two pods at once
    own = rendered_docs([], ["audit.checkpointFile.existingClaim=worm-audit"])
    spec, container = _pod(own, "codex-lineage")
    assert _mounts(spec, container)[checkpoint_dir]["persistentVolumeClaim"]["claimName"] == "worm-audit"
    assert not [d for d in own if d["kind"] == "PersistentVolumeClaim"]


def test_the_control_plane_verifies_with_the_public_anchors_only() -> None:
    docs = rendered_docs([])
    spec, container = _pod(docs, "control-plane")
    env, mounts = _env(container), _mounts(spec, container)
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "moe-audit-anchors"]
    assert cm["data"]["audit-public-key.pem"] == ANCHOR_VALUES["publicKey"]
    for var, key in (("MOE_AUDIT_PUBLIC_KEY", "audit-public-key.pem"), ("MOE_AUDIT_KEYRING", "audit-keyring.json"),
                     ("MOE_AUDIT_TSA_CHAIN", "tsa-chain.pem"), ("MOE_AUDIT_WITNESS_KEY", "witness.vkey")):
        assert env[var] == f"/etc/moe/audit/{key}" and key in cm["data"], var
    assert mounts["/etc/moe/audit"]["configMap"]["name"] == "moe-audit-anchors"
    assert not [m for m in mounts.values() if "secret" in m and "audit" in m["secret"]["secretName"]]
    for name in ("gateway", "planner", "merger"):  # nobody else mounts the anchors or the signing key
        spec, container = _pod(docs, name)
        assert not [p for p in _mounts(spec, container) if "audit" in p], name


def test_the_witness_may_read_codex_lineages_logs() -> None:
    docs = rendered_docs([])
    [policy] = [d for d in docs
                if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "moe-codex-lineage-ingress"]
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])]
    assert ANCHOR_VALUES["witnessFrom"][0] in peers
