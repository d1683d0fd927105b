"""codex-lineage's Ed25519 signing key (MOE_AUDIT_SIGNING_KEY: a PEM file only codex-lineage is given)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from moe_audit_verify.format import b64
from moe_audit_verify.keys import PublicKey


class SigningKeyError(RuntimeError):
    pass


class Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(key.public_key())

    @property
    def key_id(self) -> str:
        return self.public.id

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Signer:
        """The key at `path`; refused when it is missing, accessible to every user or not an Ed25519 key (a group
        may read it: a Kubernetes Secret volume is root:fsGroup 0440)."""
        file = Path(path)
        if not str(path) or not file.is_file():
            raise SigningKeyError(f"no audit signing key at {str(path)!r} (MOE_AUDIT_SIGNING_KEY): it is generated "
                                  "at install (fleetctl install) into .data/codex-lineage/")
        if file.stat().st_mode & stat.S_IRWXO:
            raise SigningKeyError(f"{file} is accessible to every user: chmod 600 it (only codex-lineage may hold it)")
        try:
            key = load_pem_private_key(file.read_bytes(), password=None)
        except OSError as exc:
            raise SigningKeyError(f"{file} cannot be read by codex-lineage's user: {exc.strerror}") from None
        except ValueError as exc:
            raise SigningKeyError(f"{file}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{file}: not an Ed25519 key")
        return cls(key)

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError("not an Ed25519 key")
        return cls(key)

    @classmethod
    def ephemeral(cls) -> Signer:
        """A throw-away key (a rebuild's scratch store: not the record)."""
        return cls(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> str:
        return b64(self._key.sign(message))
