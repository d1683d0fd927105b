"""RFC 3161 timestamps from the real local timestamp authority (Sigstore's timestamp-server): a checkpoint's
timestamp verifies with the authority's chain, not with another root, not for other bytes; a checkpoint
without one, or dated far from the time it claims, is named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moe_audit_verify.format import CHECKPOINT_FORMAT, checkpoint_bytes, unb64
from moe_audit_verify.segment import Checkpoint, Trust, check_checkpoints
from moe_audit_verify.timestamps import TsaChain
from moe_core.audit.signer import Signer
from moe_core.audit.tsa import TsaClient

pytestmark = pytest.mark.infra
SIGNER = Signer.ephemeral()


def _other_root() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's root")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _checkpoint(at: dt.datetime, stamp: str | None) -> Checkpoint:
    body = {"format": CHECKPOINT_FORMAT, "tenant_id": "acme", "size": 3, "root": "a" * 64,
            "time": at.isoformat().replace("+00:00", "Z"), "key_id": SIGNER.key_id}
    return Checkpoint(body, SIGNER.sign(checkpoint_bytes(body)), stamp)


async def test_a_timestamp_verifies_with_the_authoritys_chain_only(tsa: dict[str, str]) -> None:
    chain = TsaChain(Path(tsa["chain"]).read_bytes())
    now = dt.datetime.now(dt.UTC)
    stamp = await TsaClient(tsa["url"], chain).stamp(b"checkpoint bytes")
    stamped = chain.verify(unb64(stamp), b"checkpoint bytes")
    assert abs((stamped - now).total_seconds()) < 300
    with pytest.raises(ValueError, match="does not verify"):
        chain.verify(unb64(stamp), b"other bytes")
    with pytest.raises(ValueError, match="does not verify"):
        TsaChain(_other_root()).verify(unb64(stamp), b"checkpoint bytes")


async def test_checkpoints_without_a_timestamp_or_dated_elsewhere_are_named(tsa: dict[str, str]) -> None:
    chain = TsaChain(Path(tsa["chain"]).read_bytes())
    client = TsaClient(tsa["url"], chain)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    good = _checkpoint(now, None)
    good = Checkpoint(good.body, good.signature, await client.stamp(checkpoint_bytes(good.body)))
    backdated = _checkpoint(now - dt.timedelta(hours=1), None)
    backdated = Checkpoint(backdated.body, backdated.signature, await client.stamp(checkpoint_bytes(backdated.body)))
    bare = _checkpoint(now + dt.timedelta(seconds=1), None)
    valid, problems = check_checkpoints([good, backdated, bare], Trust(SIGNER.public, chain), "acme")
    assert len(valid) == 3  # all signed by the key; the timestamps are what is wrong
    assert [p.record for p in problems] == [backdated.name, bare.name]
    assert problems[0].problem.startswith("the timestamp authority dated it ")
    assert problems[0].problem.endswith(" s from the time it claims: it was made or re-signed at another time")
    assert problems[1].problem == "no RFC 3161 timestamp: not anchored outside the database"
    _, elsewhere = check_checkpoints([good], Trust(SIGNER.public, TsaChain(_other_root())), "acme")
    assert [p.problem.split(":")[0] for p in elsewhere] == ["timestamp"]


async def test_a_keyring_of_tsa_roots_verifies_a_timestamp_of_any_of_its_authorities(tsa: dict[str, str]) -> None:
    """After a change of timestamp authority the auditor holds the old and the new root (docs/audit.md): one PEM of
    several chains, each ending with its root. A stamp verifies when it chains to one of them, and to no other."""
    ours = Path(tsa["chain"]).read_bytes()
    stamp = unb64(await TsaClient(tsa["url"], TsaChain(ours)).stamp(b"checkpoint bytes"))
    for ring in (TsaChain(_other_root() + ours), TsaChain(ours + _other_root())):
        assert len(ring.chains) == 2 and ring.fingerprint().count(", ") == 1
        assert ring.verify(stamp, b"checkpoint bytes") == TsaChain(ours).verify(stamp, b"checkpoint bytes")
        with pytest.raises(ValueError, match="does not verify with any of the 2 TSA roots given"):
            ring.verify(stamp, b"other bytes")
    with pytest.raises(ValueError, match="does not verify with any of the 2 TSA roots given"):
        TsaChain(_other_root() + _other_root()).verify(stamp, b"checkpoint bytes")
    leaf = x509.load_pem_x509_certificates(ours)[0].public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValueError, match="1 certificates follow the last root"):
        TsaChain(ours + leaf)  # a chain cut off before its root is refused, not taken for a root
