"""codex-lineage's Ed25519 signing key (MOE_AUDIT_SIGNING_KEY: a PEM file only codex-lineage is given)."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from moe_audit_verify.format import b64, entry_message
from moe_audit_verify.keys import KeyRing, PublicKey
from moe_core.runtime.signing_keys import load_private_key

# entry signatures kept in memory until a checkpoint's check meets them: 17 MB at most (measured, 170 bytes each); the
# fleet's rate times the checkpoint interval while the checkpoints keep up (MOE_AUDIT_REMEMBERED_SIGNATURES)
REMEMBERED = 100_000


class SigningKeyError(RuntimeError):
    pass


def _pair(message: bytes, signature: str) -> bytes:
    return hashlib.sha256(message + b"\x00" + signature.encode()).digest()


class Signer:
    def __init__(self, key: Ed25519PrivateKey, remembered: int = REMEMBERED) -> None:
        self._key = key
        self.public = PublicKey(key.public_key())
        # (message, signature) pairs of the entries this process signed and saw committed, not yet checked: the
        # oldest forgotten beyond the bound (then verified as any other entry)
        self._stored: OrderedDict[bytes, None] = OrderedDict()
        self._remembered = remembered

    @property
    def key_id(self) -> str:
        return self.public.id

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], remembered: int = REMEMBERED) -> Signer:
        """The key at `path`; refused when it is missing, accessible to every user or not an Ed25519 key (a group
        may read it: a Kubernetes Secret volume is root:fsGroup 0440)."""
        return cls(load_private_key(path, SigningKeyError, holder="codex-lineage", missing=(
            f"no audit signing key at {str(path)!r} (MOE_AUDIT_SIGNING_KEY): it is generated at install (fleetctl "
            "install) into .data/codex-lineage/")), remembered)

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

    def sign_raw(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def remember(self, signed: Iterable[tuple[str, str]]) -> None:
        """Entries this key signed (their content hash, their signature) that are now committed in the store."""
        for digest, signature in signed:
            self._stored[_pair(entry_message(digest), signature)] = None
        while len(self._stored) > self._remembered:
            self._stored.popitem(last=False)

    def verifier(self, ring: KeyRing | None = None) -> KeyRing:
        """The keys a checkpoint's check trusts: this one and the keyring's (MOE_AUDIT_KEYRING: the keys retired by
        a rotation still vouch for what they signed before it, such as the entries after the last checkpoint
        before the rotation). An entry signature this process made and saw committed is known to hold without
        Ed25519 (it is forgotten once met); every other is verified."""
        return _Remembering(self.public, self._stored, ring)


class _Remembering(KeyRing):
    """A pair is remembered only if this key signed exactly that message (the entry's content hash, recomputed from
    the stored row by the caller) and produced exactly that signature: what Ed25519 would accept. A changed content,
    a changed or borrowed signature or another key's id misses, and is verified."""

    def __init__(self, key: PublicKey, stored: OrderedDict[bytes, None], ring: KeyRing | None = None) -> None:
        # of the keyring, only keys a rotation retired: one key signs at a time, so a key the ring lists as in use
        # beside this one was never codex-lineage's, whoever wrote it into the file (a retired key vouches only for
        # what it signed before its retirement: segment.retired_signers)
        retired = {k: t for k, t in (ring.retired if ring is not None else {}).items() if k != key.id}
        super().__init__([*(ring.keys[k] for k in retired if ring is not None and k in ring.keys), key], retired)
        self.key_id = key.id
        self.stored = stored

    def verifies(self, message: bytes, signature: str, key_id: object = None) -> bool:
        pair = _pair(message, signature)
        if key_id == self.key_id and pair in self.stored:
            del self.stored[pair]
            return True
        return super().verifies(message, signature, key_id)
