"""The compose deployment carries the audit record's anchors (issue 47, item 6): a timestamp authority and a witness
of its own, each with its own user and key; codex-lineage gets the TSA, the witness and its vkey, the keyring and the
checkpoint file on a volume of its own; the control plane verifies with the public key, the keyring, the TSA chain
and the witness's vkey. compose/init_secrets.py (compose/anchors.py) makes the anchors with openssl, each private key
readable only by its service's user, each public one in the verifier's own format. (CI's container stage runs them
for real: deploy/containers/compose_ci.sh.)"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import COMPOSE, compose_secrets, run
from tests.deploy.test_deploy_files import compose_binary

pytestmark = pytest.mark.unit
ANCHORS = "/srv/moe/anchors"


def _services(env: dict[str, str] | None = None) -> dict[str, Any]:
    values = {**compose_secrets(), "MOE_AUDIT_ANCHORS_DIR": ANCHORS, **(env or {})}
    clean = {k: v for k, v in os.environ.items() if k not in values and not k.startswith("MOE_AUDIT_")}
    done = run([compose_binary(), "-f", str(COMPOSE / "compose.yaml"), "config", "--format", "json"],
               env={**clean, **values})
    assert done.returncode == 0, done.stderr
    model = json.loads(done.stdout)
    return {"services": model["services"], "secrets": model.get("secrets", {}), "configs": model.get("configs", {}),
            "volumes": model.get("volumes", {})}


def _targets(service: dict[str, Any], kind: str) -> dict[str, str]:
    return {item["source"]: item.get("target", f"/run/secrets/{item['source']}") for item in service.get(kind, [])}


def test_codex_lineage_is_anchored_by_the_tsa_and_witness_of_the_deployment() -> None:
    model = _services()
    services = model["services"]
    env = services["codex-lineage"]["environment"]
    assert env["MOE_AUDIT_TSA_URL"] == "http://tsa:3000/api/v1/timestamp"
    assert env["MOE_AUDIT_WITNESS_URL"] == "http://witness:8191"
    configs = _targets(services["codex-lineage"], "configs")
    assert configs["tsa-chain"] == env["MOE_AUDIT_TSA_CHAIN"]
    assert configs["witness-vkey"] == env["MOE_AUDIT_WITNESS_KEY"]
    assert configs["audit-keyring"] == env["MOE_AUDIT_KEYRING"]
    # the checkpoint outlet: a file on a volume only codex-lineage mounts (the topic is the other)
    [mount] = [v for v in services["codex-lineage"]["volumes"] if v["source"] == "audit-checkpoints"]
    assert env["MOE_AUDIT_CHECKPOINT_FILE"].startswith(mount["target"] + "/")
    mounting = [n for n, s in services.items()
                if any(v.get("source") == "audit-checkpoints" for v in s.get("volumes", []))]
    assert mounting == ["codex-lineage"]
    # the anchors' files: the generated directory (or the operator's own chain and vkey of outside anchors)
    assert model["configs"]["tsa-chain"]["file"] == f"{ANCHORS}/tsa-chain.pem"
    assert model["configs"]["witness-vkey"]["file"] == f"{ANCHORS}/witness.vkey"
    outside = _services({"MOE_AUDIT_TSA_URL": "https://tsa.example.org/tsr",
                         "MOE_AUDIT_TSA_CHAIN_FILE": "/etc/x/chain.pem",
                         "MOE_AUDIT_WITNESS_URL": "https://witness.example.org",
                         "MOE_AUDIT_WITNESS_KEY_FILE": "/etc/x/w.vkey"})
    assert outside["services"]["codex-lineage"]["environment"]["MOE_AUDIT_TSA_URL"] == "https://tsa.example.org/tsr"
    assert outside["configs"]["tsa-chain"]["file"] == "/etc/x/chain.pem"
    assert outside["configs"]["witness-vkey"]["file"] == "/etc/x/w.vkey"


def test_the_control_plane_verifies_with_the_anchors_only() -> None:
    services = _services()["services"]
    env, configs = services["control-plane"]["environment"], _targets(services["control-plane"], "configs")
    for var, source in (("MOE_AUDIT_PUBLIC_KEY", "audit-public-key"), ("MOE_AUDIT_KEYRING", "audit-keyring"),
                        ("MOE_AUDIT_TSA_CHAIN", "tsa-chain"), ("MOE_AUDIT_WITNESS_KEY", "witness-vkey")):
        assert env[var] == configs[source], var
    assert "audit-signing-key" not in _targets(services["control-plane"], "secrets")


def test_each_private_key_is_mounted_into_its_own_service_alone_under_its_own_user() -> None:
    model = _services()
    services = model["services"]
    holders = {name: sorted(_targets(s, "secrets")) for name, s in services.items() if s.get("secrets")}
    # each fleet service holds its own producer key and the producers' public list (docs/audit.md), nothing else
    own = {name: sorted(k for k in keys if k not in (f"producer-key-{name}", "producer-keys"))
           for name, keys in holders.items()}
    assert own == {**{name: [] for name in holders}, "codex-lineage": ["audit-signing-key"], "tsa": ["tsa-key"],
                   "witness": ["witness-key"]}
    assert {name for name in holders if f"producer-key-{name}" in holders[name]} == set(holders) - {"tsa", "witness"}
    assert model["secrets"]["tsa-key"]["file"] == f"{ANCHORS}/tsa-key.pem"
    assert model["secrets"]["witness-key"]["file"] == f"{ANCHORS}/witness.key"
    assert services["tsa"]["user"] == "10002:10002" and services["witness"]["user"] == "10003:10003"
    assert "/run/secrets/tsa-key" in services["tsa"]["command"]
    assert "--private_key_path=/run/secrets/witness-key" in services["witness"]["command"]
    assert "--public_witness_config_url=http://codex-lineage:8109/v1/witness/logs" in services["witness"]["command"]
    assert [v["source"] for v in services["witness"]["volumes"]] == ["witness-data"]
    assert all(services[n]["read_only"] for n in ("tsa", "witness"))


def test_init_secrets_makes_the_anchors_each_key_its_services_alone(tmp_path: Path) -> None:
    from moe_audit_verify.keys import KeyRing, PublicKey
    from moe_audit_verify.timestamps import TsaChain
    from moe_core.audit.signer import Signer
    from moe_core.audit.verify import load_witness

    anchors = tmp_path / "anchors"
    done = run(["python3", str(COMPOSE / "init_secrets.py"), "--out", str(tmp_path / "secrets.env"),
                "--key", str(tmp_path / "signing.pem"), "--anchors", str(anchors)])
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in (tmp_path / "secrets.env").read_text().splitlines())
    assert env["MOE_AUDIT_ANCHORS_DIR"] == str(anchors.resolve())
    owners = {"tsa-key.pem": 10002, "witness.key": 10003}
    for name, uid in owners.items():
        info = (anchors / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, name
        if os.geteuid() == 0:
            assert info.st_uid == uid, name
    signer = Signer.from_file(tmp_path / "signing.pem")
    ring = KeyRing.from_json((anchors / "audit-keyring.json").read_bytes())
    assert list(ring.keys) == [signer.key_id] and not ring.retired
    assert PublicKey.from_pem((anchors / "audit-public-key.pem").read_bytes()).id == signer.key_id
    TsaChain((anchors / "tsa-chain.pem").read_bytes())  # a timestamping leaf under its root, as the verifier wants
    assert load_witness(str(anchors / "witness.vkey")) is not None
    before = {p.name: p.read_bytes() for p in anchors.iterdir()}
    again = run(["python3", str(COMPOSE / "init_secrets.py"), "--out", str(tmp_path / "secrets.env"),
                 "--key", str(tmp_path / "signing.pem")])
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in anchors.iterdir()} == before  # never replaced once made
