"""codex-lineage's Ed25519 public key and the signatures it verifies."""

from __future__ import annotations

import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from moe_audit_verify.format import key_id, unb64


class PublicKey:
    def __init__(self, key: Ed25519PublicKey) -> None:
        self.key = key
        self.raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.id = key_id(self.raw)

    @classmethod
    def from_pem(cls, pem: bytes) -> PublicKey:
        try:
            key = load_pem_public_key(pem)
        except ValueError as exc:
            raise ValueError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        return cls(key)

    def pem(self) -> bytes:
        return self.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def verifies(self, message: bytes, signature: str) -> bool:
        try:
            self.key.verify(unb64(signature), message)
        except (InvalidSignature, binascii.Error, ValueError, TypeError, AttributeError):
            return False
        return True
