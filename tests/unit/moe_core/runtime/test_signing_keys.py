"""One check for every signing key the fleet reads (moe_core.runtime.signing_keys): a producer's key and
codex-lineage's audit key are refused alike, each with its own error and what to do about it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moe_core.audit.signer import Signer, SigningKeyError
from moe_core.runtime.producer_signing import ProducerKeyError, ProducerSigner

pytestmark = pytest.mark.unit
PEM = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()


def _file(folder: Path, name: str, data: bytes, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("load", "error", "missing", "holder"), [
    (lambda p: Signer.from_file(p), SigningKeyError, "no audit signing key at", "codex-lineage"),
    (lambda p: ProducerSigner.from_file(str(p), "planner"), ProducerKeyError, "no producer signing key at", "planner"),
])
def test_a_signing_key_is_refused_unless_it_is_its_holders_ed25519_pem(tmp_path: Path, load: object,
                                                                       error: type[Exception], missing: str,
                                                                       holder: str) -> None:
    assert callable(load)
    good = Ed25519PrivateKey.generate()
    loaded = load(_file(tmp_path, "good.pem", good.private_bytes(*PEM), 0o440))  # a Secret volume: group may read
    public = good.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert loaded._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == public

    cases = {
        missing: tmp_path / "absent.pem",
        f"only {holder} may hold it": _file(tmp_path, "open.pem", good.private_bytes(*PEM), 0o644),
        "not a PEM private key": _file(tmp_path, "junk.pem", b"not a key"),
        "not an Ed25519 key": _file(tmp_path, "ec.pem", generate_private_key(SECP256R1()).private_bytes(*PEM)),
    }
    for why, path in cases.items():
        with pytest.raises(error, match=why):
            load(path)
