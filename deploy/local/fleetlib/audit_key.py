"""codex-lineage's audit signing key (Ed25519), generated once at install into .data/codex-lineage/: the
private key (mode 0600) is handed to codex-lineage alone (MOE_AUDIT_SIGNING_KEY); the public key beside it
is exported for verifiers (MOE_AUDIT_PUBLIC_KEY; the gateway, replay exports, auditors)."""

from __future__ import annotations

import os
from pathlib import Path

from . import config

KEY_DIR = config.DATA / "codex-lineage"
PRIVATE = KEY_DIR / "audit-signing-key.pem"
PUBLIC = KEY_DIR / "audit-public-key.pem"
CHECKPOINTS = KEY_DIR / "audit-checkpoints.jsonl"  # the append-only checkpoint file of the local fleet


def ensure(private: Path = PRIVATE, public: Path = PUBLIC) -> tuple[Path, Path]:
    """The key pair at these paths, generated when the private key is missing; never replaced."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not private.is_file():
        private.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    private.chmod(0o600)
    if not public.is_file():
        loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
        public.write_bytes(loaded.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public
