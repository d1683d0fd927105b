"""codex-lineage's audit signing key (Ed25519), generated once at install into .data/codex-lineage/: the
private key (mode 0600) is handed to codex-lineage alone (MOE_AUDIT_SIGNING_KEY); the public key beside it
is exported for verifiers (MOE_AUDIT_PUBLIC_KEY; the gateway, replay exports, auditors), and so is the keyring
(MOE_AUDIT_KEYRING: every key it signed with, the retired ones with their retirement time; `make
rotate-audit-key` makes a new key, moe_core.audit.keyring)."""

from __future__ import annotations

from pathlib import Path

from . import config

KEY_DIR = config.DATA / "codex-lineage"
PRIVATE = KEY_DIR / "audit-signing-key.pem"
PUBLIC = KEY_DIR / "audit-public-key.pem"
KEYRING = KEY_DIR / "audit-keyring.json"
CHECKPOINTS = KEY_DIR / "audit-checkpoints.jsonl"  # the append-only checkpoint file of the local fleet


def ensure(private: Path = PRIVATE, public: Path = PUBLIC, keyring: Path | None = None) -> tuple[Path, Path]:
    """The key pair at these paths, generated when the private key is missing (never replaced here), and the
    keyring holding its public key (beside the key pair unless given)."""
    from moe_core.audit import keyring as keys

    keys.ensure(private, public, keyring or private.parent / KEYRING.name)
    return private, public
