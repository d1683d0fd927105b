"""codex-lineage's Ed25519 public keys (the one in use and the retired ones: the keyring) and the signatures they
verify."""

from __future__ import annotations

import binascii
import json
from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
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
        except (ValueError, UnsupportedAlgorithm) as exc:
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


KEYRING_FORMAT = "moe-audit-keyring/1"


class KeyRing:
    """Every signing key codex-lineage has had (their public halves), each with the time it was retired (None:
    the one in use). A signature verifies with the key its signed content names (key_id), or with any key of the
    ring when it names none (entries signed before key ids were recorded); a retired key vouches only for what
    was signed before its retirement (segment checks that against each checkpoint's and entry's time).

    The keyring file (MOE_AUDIT_KEYRING, exported as keyring.json):
    {"format": "moe-audit-keyring/1", "keys": [{"id": ..., "public_key": PEM, "retired_at": ISO 8601 | null}]}"""

    def __init__(self, keys: list[PublicKey], retired: dict[str, datetime] | None = None) -> None:
        self.keys = {k.id: k for k in keys}
        self.retired = dict(retired or {})

    @classmethod
    def of(cls, key: PublicKey | KeyRing) -> KeyRing:
        return key if isinstance(key, KeyRing) else cls([key])

    @classmethod
    def from_json(cls, data: bytes) -> KeyRing:
        try:
            doc = json.loads(data)
            if doc.get("format") != KEYRING_FORMAT:
                raise ValueError(f"not a keyring (format {KEYRING_FORMAT} expected)")
            keys, retired = [], {}
            for item in doc["keys"]:
                key = PublicKey.from_pem(str(item["public_key"]).encode())
                if key.id != item["id"]:
                    raise ValueError(f"key {item['id']}: its public key has the id {key.id}")
                keys.append(key)
                if item.get("retired_at"):
                    retired[key.id] = datetime.fromisoformat(str(item["retired_at"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a keyring: {exc!r}") from None
        if not keys:
            raise ValueError("the keyring holds no key")
        return cls(keys, retired)

    def to_json(self) -> str:
        items = [{"id": k.id, "public_key": k.pem().decode(),
                  "retired_at": self.retired[k.id].isoformat().replace("+00:00", "Z") if k.id in self.retired
                  else None} for k in self.keys.values()]
        return json.dumps({"format": KEYRING_FORMAT, "keys": items}, indent=1) + "\n"

    @property
    def id(self) -> str:
        """The ids of the keys in use (not retired), for display."""
        return ", ".join(i for i in self.keys if i not in self.retired) or "none in use"

    def describe(self) -> str:
        return ", ".join(f"{i}" + (f" (retired {self.retired[i].isoformat()})" if i in self.retired else "")
                         for i in self.keys)

    def get(self, key_id: object) -> PublicKey | None:
        return self.keys.get(key_id) if isinstance(key_id, str) else None

    def retired_by(self, key_id: object, at: datetime) -> datetime | None:
        """The retirement time of key `key_id` if it was retired at or before `at`, else None."""
        retired = self.retired.get(key_id) if isinstance(key_id, str) else None
        return retired if retired is not None and retired <= at else None

    def verifies(self, message: bytes, signature: str, key_id: object = None) -> bool:
        if key_id is not None:
            key = self.get(key_id)
            return key is not None and key.verifies(message, signature)
        return any(k.verifies(message, signature) for k in self.keys.values())
