"""The chart with opa.bundle (issue 52): OPA polls the control plane's signed policy bundle with its token and holds
only the public key (its config the one moe_core.policy.bundle.opa_config gives, persisting the last bundle); the
control plane alone mounts the signing key (0440) and OPA's authorization to put in the bundle; the NetworkPolicy
lets OPA reach the control plane; without a public key the chart refuses to render. Off by default."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from moe_core.policy.bundle import opa_config
from tests.deploy.deploy_support import ANCHORS, CHART, helm, helm_template, rendered_docs
from tests.deploy.test_helm import by_kind, kubeconform_check

pytestmark = pytest.mark.unit


def _public() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_opa_polls_the_control_planes_bundle_with_the_public_key_only(tmp_path: Path) -> None:
    public = _public()
    values = tmp_path / "bundle.yaml"
    values.write_text(yaml.safe_dump({"opa": {"bundle": {"enabled": True, "publicKey": public}}}))
    docs = rendered_docs([str(values)])
    (tmp_path / "kube").mkdir()
    code, out = kubeconform_check(helm_template([str(values)]), tmp_path / "kube")
    assert code == 0, out
    kinds = by_kind(docs)
    config = yaml.safe_load(kinds["ConfigMap"]["moe-opa-config"]["data"]["opa-config.yaml"])
    expected = opa_config("http://moe-control-plane:8110", public.strip(), token=True, min_delay_s=2,
                          max_delay_s=10, persist_dir="/var/lib/opa", long_poll_s=5)
    assert config == expected
    pod = kinds["Deployment"]["moe-opa"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][-4:] == ["--config-file", "/config/opa-config.yaml", "--authentication=token",
                                         "--authorization=basic"]
    assert "--watch" not in container["command"] and "/policies" not in container["command"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["opa-config"] == "/config" and mounts["opa-persist"] == "/var/lib/opa"
    assert "opa-bundle-key" not in mounts and "opa-authz" not in mounts
    cp = kinds["Deployment"]["moe-control-plane"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in cp["containers"][0]["env"]}
    assert env["MOE_OPA_BUNDLE_SIGNING_KEY"] == "/var/run/moe-opa-bundle/signing-key.pem"
    assert env["MOE_OPA_SYSTEM_POLICY_DIR"] == "/etc/moe/policy/opa-system"
    volumes = {v["name"]: v for v in cp["volumes"]}
    assert volumes["opa-bundle-key"]["secret"] == {"secretName": "moe-opa-bundle", "defaultMode": 0o440,
                                                   "items": [{"key": "signing-key.pem", "path": "signing-key.pem"}]}
    assert volumes["opa-authz"]["configMap"]["name"] == "moe-opa-system"
    others = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"
              and "opa-bundle-key" in {v["name"] for v in d["spec"]["template"]["spec"].get("volumes", [])}]
    assert others == ["moe-control-plane"]  # the control plane alone holds the signing key
    ingress = kinds["NetworkPolicy"]["moe-control-plane-ingress"]["spec"]["ingress"]
    assert any(r["from"][0].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "opa"
               for r in ingress if r.get("from"))


def test_off_by_default_and_refused_without_a_public_key() -> None:
    kinds = by_kind(rendered_docs([]))
    assert "moe-opa-config" not in kinds["ConfigMap"]
    assert "--watch" in kinds["Deployment"]["moe-opa"]["spec"]["template"]["spec"]["containers"][0]["command"]
    refused = subprocess.run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "opa.bundle.enabled=true"],
                             capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "publicKey" in refused.stderr
