"""The local fleet's OPA on the control plane's signed bundle (fleetlib.opa_bundle), on by default: OPA is started
with a config that long-polls the local control plane, verifies with the public key and persists the last bundle,
a first signed bundle of the policy files is put where OPA starts from (kept once there; signed again with a new key),
and only the control plane gets the private key (0600); off (MOE_OPA_BUNDLE=false), OPA watches policy/opa and the
control plane gets no signing key."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def read_bundle(body: bytes) -> dict[str, object]:
    """A .tar.gz bundle's files: JSON ones read, Rego ones as text."""
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        files = {m.name.lstrip("/"): tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    return {n: json.loads(b) if n.startswith(".") else b.decode() for n, b in files.items()}


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from fleetlib import gotools, opa, opa_bundle

    for name, path in {"KEY_DIR": tmp_path / "keys", "PRIVATE": tmp_path / "keys" / "signing.pem",
                       "PUBLIC": tmp_path / "keys" / "public.pem", "CONFIG": tmp_path / "opa" / "config.json",
                       "PERSIST": tmp_path / "opa" / "persist"}.items():
        monkeypatch.setattr(opa_bundle, name, path)
    monkeypatch.setattr(gotools, "ensure_tool", lambda name: None)
    monkeypatch.setattr(opa_bundle.config, "read_env_file", lambda: {})
    monkeypatch.setattr(opa_bundle, "opa_holds_bundle", lambda: True)  # the running OPA: not the shared one's
    return opa, opa_bundle


@pytest.mark.parametrize("off", ["false", "0", "no", "off"])
def test_off_opa_watches_the_files(local, monkeypatch: pytest.MonkeyPatch, off: str) -> None:  # type: ignore[no-untyped-def]
    opa, opa_bundle = local
    monkeypatch.setenv("MOE_OPA_BUNDLE", off)
    argv = opa.prepare()
    assert "--watch" in argv and argv[-1] == str(opa.POLICY_DIR) and "--config-file" not in argv
    assert opa_bundle.control_plane_env() == {} and not opa_bundle.PRIVATE.exists()


@pytest.mark.parametrize("on", [None, "true"])
def test_on_by_default_opa_polls_the_control_plane_with_the_public_key_only(  # type: ignore[no-untyped-def]
        local, monkeypatch: pytest.MonkeyPatch, on: str | None) -> None:
    opa, opa_bundle = local
    if on is None:
        monkeypatch.delenv("MOE_OPA_BUNDLE", raising=False)
    else:
        monkeypatch.setenv("MOE_OPA_BUNDLE", on)
    argv = opa.prepare()
    assert argv[-2:] == ["--config-file", str(opa_bundle.CONFIG)] and "--watch" not in argv
    config = json.loads(opa_bundle.CONFIG.read_text())
    port = opa_bundle.config.port("control-plane")
    assert config["services"]["control-plane"]["url"].endswith(f":{port}/v1/opa")
    assert config["bundles"]["policies"]["persist"] is True
    assert config["bundles"]["policies"]["polling"]["long_polling_timeout_seconds"] == opa_bundle.LONG_POLL_S
    assert config["persistence_directory"] == str(opa_bundle.PERSIST)
    assert config["keys"]["default"]["key"] == opa_bundle.PUBLIC.read_text()
    assert "PRIVATE KEY" not in opa_bundle.CONFIG.read_text()
    env = opa_bundle.control_plane_env()
    assert env == {"MOE_OPA_BUNDLE_SIGNING_KEY": str(opa_bundle.PRIVATE)}
    assert stat.S_IMODE(opa_bundle.PRIVATE.stat().st_mode) == 0o600
    key = opa_bundle.PRIVATE.read_bytes()
    opa_bundle.ensure_keys()
    assert opa_bundle.PRIVATE.read_bytes() == key  # never replaced


def test_a_first_signed_bundle_of_the_files_is_put_where_opa_starts_from(local, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                                          ) -> None:
    import jwt

    from moe_core.policy.opa import version_of

    opa, opa_bundle = local
    monkeypatch.delenv("MOE_OPA_BUNDLE", raising=False)
    opa.prepare()
    seeded = opa_bundle.persisted()
    assert seeded == opa_bundle.PERSIST / "bundles" / "policies" / "bundle.tar.gz"  # OPA's persistence layout
    files = read_bundle(seeded.read_bytes())
    decisions = [(p.name, p.read_bytes()) for p in sorted(opa.POLICY_DIR.glob("*.rego"))
                 if not p.name.endswith("_test.rego")]
    assert files[".manifest"] == {"revision": version_of(decisions).digest, "roots": [""]}
    assert set(files) - {".manifest", ".signatures.json"} == {n for n, _ in opa_bundle.first_modules()}
    assert "authz.rego" in files  # policy/opa-system, as the control plane's bundle holds it
    token = files[".signatures.json"]["signatures"][0]  # type: ignore[index]
    jwt.decode(token, opa_bundle.PUBLIC.read_text(), algorithms=["RS256"])  # signed with the fleet's key

    kept = b"the last bundle OPA loaded (maybe an approved egress change)"
    seeded.write_bytes(kept)
    opa.prepare()
    assert seeded.read_bytes() == kept  # never replaced while the key is the same
    opa_bundle.PRIVATE.unlink()  # a new key pair: what OPA kept no longer verifies
    opa.prepare()
    assert seeded.read_bytes() != kept
    resigned = read_bundle(seeded.read_bytes())[".signatures.json"]["signatures"][0]  # type: ignore[index]
    jwt.decode(resigned, opa_bundle.PUBLIC.read_text(), algorithms=["RS256"])


@pytest.mark.parametrize(("holds", "key"), [(True, True), (None, True), (False, False)])
def test_the_control_plane_gets_the_key_unless_the_running_opa_watches_the_files(  # type: ignore[no-untyped-def]
        local, monkeypatch: pytest.MonkeyPatch, holds: bool | None, key: bool) -> None:
    """A running OPA is reused as it was started: one a test session started watching the files never polls the
    bundle, so an approval signed into it would wait in vain; the control plane then puts modules as before."""
    _, opa_bundle = local
    monkeypatch.delenv("MOE_OPA_BUNDLE", raising=False)
    monkeypatch.setattr(opa_bundle, "opa_holds_bundle", lambda: holds)
    assert ("MOE_OPA_BUNDLE_SIGNING_KEY" in opa_bundle.control_plane_env()) is key
