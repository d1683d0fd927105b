"""The local fleet's OPA on the control plane's signed bundle (fleetlib.opa_bundle), opt-in: off, OPA watches
policy/opa and the control plane gets no signing key; on (MOE_OPA_BUNDLE=true), OPA is started with a config that
polls the local control plane, verifies with the public key and persists the last bundle, and only the control plane
gets the private key (0600)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from fleetlib import gotools, opa, opa_bundle

    for name, path in {"KEY_DIR": tmp_path / "keys", "PRIVATE": tmp_path / "keys" / "signing.pem",
                       "PUBLIC": tmp_path / "keys" / "public.pem", "CONFIG": tmp_path / "opa" / "config.json",
                       "PERSIST": tmp_path / "opa" / "persist"}.items():
        monkeypatch.setattr(opa_bundle, name, path)
    monkeypatch.setattr(gotools, "ensure_tool", lambda name: None)
    monkeypatch.setattr(opa_bundle.config, "read_env_file", lambda: {})
    return opa, opa_bundle


def test_off_by_default_opa_watches_the_files(local, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    opa, opa_bundle = local
    monkeypatch.delenv("MOE_OPA_BUNDLE", raising=False)
    argv = opa.prepare()
    assert "--watch" in argv and argv[-1] == str(opa.POLICY_DIR) and "--config-file" not in argv
    assert opa_bundle.control_plane_env() == {} and not opa_bundle.PRIVATE.exists()


def test_on_opa_polls_the_control_plane_with_the_public_key_only(local, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    opa, opa_bundle = local
    monkeypatch.setenv("MOE_OPA_BUNDLE", "true")
    argv = opa.prepare()
    assert argv[-2:] == ["--config-file", str(opa_bundle.CONFIG)] and "--watch" not in argv
    config = json.loads(opa_bundle.CONFIG.read_text())
    port = opa_bundle.config.port("control-plane")
    assert config["services"]["control-plane"]["url"].endswith(f":{port}/v1/opa")
    assert config["bundles"]["policies"]["persist"] is True
    assert config["persistence_directory"] == str(opa_bundle.PERSIST)
    assert config["keys"]["default"]["key"] == opa_bundle.PUBLIC.read_text()
    assert "PRIVATE KEY" not in opa_bundle.CONFIG.read_text()
    env = opa_bundle.control_plane_env()
    assert env == {"MOE_OPA_BUNDLE_SIGNING_KEY": str(opa_bundle.PRIVATE)}
    assert stat.S_IMODE(opa_bundle.PRIVATE.stat().st_mode) == 0o600
    key = opa_bundle.PRIVATE.read_bytes()
    opa_bundle.ensure_keys()
    assert opa_bundle.PRIVATE.read_bytes() == key  # never replaced
