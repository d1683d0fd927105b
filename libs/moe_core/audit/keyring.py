"""codex-lineage's signing key and its keyring on disk: the private key (0600, codex-lineage's alone), the public
key in use, and the keyring (every public key it has signed with, each retired one with its retirement time)
that exports carry and verifiers accept (moe_audit_verify.keys.KeyRing). `rotate` makes a new key: the old
public key stays in the keyring, retired now; the old private key is destroyed, so nothing later can carry
its signature."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moe_audit_verify.keys import Adoption, KeyRing, PublicKey, adoption_message, rotation_message
from moe_core.audit.signer import Signer


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically (a temporary file beside it, then rename): a crash never leaves half a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _new_private() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption())


def read_keyring(keyring: Path) -> KeyRing | None:
    return KeyRing.from_json(keyring.read_bytes()) if keyring.is_file() else None


def ensure(private: Path, public: Path, keyring: Path | None = None) -> Signer:
    """The key pair (generated when the private key is missing; never replaced) and the keyring holding its
    public key."""
    if not private.is_file():
        _write(private, _new_private(), 0o600)
    private.chmod(0o600)
    signer = Signer.from_file(private)
    if not public.is_file():
        _write(public, signer.public.pem(), 0o644)
    if keyring is not None:
        ring = read_keyring(keyring) or KeyRing([])
        if signer.key_id not in ring.keys:
            ring.keys[signer.key_id] = signer.public
            _write(keyring, ring.to_json().encode(), 0o644)
    return signer


def rotate(private: Path, public: Path, keyring: Path, now: datetime | None = None) -> tuple[str, str]:
    """A new signing key in place of the old one, which is retired in the keyring at `now`. Returns (old id,
    new id). Run while codex-lineage is stopped: it reads its key at start."""
    old = ensure(private, public, keyring)
    ring = read_keyring(keyring)
    assert ring is not None
    at = now or datetime.now(UTC)  # to the next whole second: what the old key signed until now is before it
    retired_at = at.replace(microsecond=0) + (timedelta(seconds=1) if at.microsecond else timedelta())
    ring.retired[old.key_id] = retired_at
    new_pem = _new_private()
    new = Signer.from_pem(new_pem)
    ring.keys[new.key_id] = new.public
    # the old key signs the hand-over before it is destroyed: the new keyring is vouched for by the key it retires
    ring.introductions[new.key_id] = (old.key_id, old.sign(rotation_message(old.key_id, retired_at, new.public)))
    _write(keyring, ring.to_json().encode(), 0o644)  # first: a key is never in use before it is in the ring
    _write(private, new_pem, 0o600)  # the old private key is gone
    _write(public, new.public.pem(), 0o644)
    return old.key_id, new.key_id


def adopt(private: Path, keyring: Path, now: datetime | None = None) -> list[str]:
    """Once, for a keyring rotated before rotations were signed (no `introduced_by`, so every reader refuses it): the
    key in use (the ring's last, not retired) signs every key up to itself with its retirement (KeyRing's
    "adopted" block). Returns the ids it vouched for; [] when the ring needs nothing (ValueError: it cannot)."""
    ring = KeyRing.from_json(keyring.read_bytes(), checked=False)
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    try:
        ring.check(at)
        return []
    except ValueError:
        pass
    if ring.adoption is not None:
        raise ValueError("the keyring was adopted already and still does not hold: it was changed since (refused)")
    signer = Signer.from_file(private)
    order = list(ring.keys)
    if order[-1] != signer.key_id or signer.key_id in ring.retired:
        raise ValueError(f"the signing key {signer.key_id} is not the keyring's last key in use: only the key in use "
                         "adopts the keys before it")
    older = [(ring.keys[i], ring.retired.get(i)) for i in order[:-1]]
    ring.adoption = Adoption(signer.key_id, at, tuple(order),
                             signer.sign(adoption_message(signer.public, at, older)))
    ring.check(at)  # what every reader will check
    _write(keyring, ring.to_json().encode(), 0o644)
    return order


def retired(keyring: Path, key: PublicKey) -> datetime | None:
    """When `key` was retired according to the keyring (None: in use, or no keyring)."""
    ring = read_keyring(keyring)
    return ring.retired.get(key.id) if ring is not None else None
