"""codex-lineage's Ed25519 public keys (the one in use and the retired ones: the keyring) and the signatures they
verify."""

from __future__ import annotations

import binascii
import json
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from moe_audit_verify.format import b64, canonical, key_id, unb64


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
ROTATION_DOMAIN = b"moe-audit-rotation/1\n"
RETIREMENT_SKEW = timedelta(seconds=60)  # a rotation rounds its retirement up to the next second


def rotation_message(old_id: str, retired_at: datetime, new: PublicKey) -> bytes:
    """What the retiring key signs when it hands over to its successor: itself, when it retires, and the new key."""
    return ROTATION_DOMAIN + canonical({"retired": old_id, "retired_at": _iso(retired_at), "new": new.id,
                                        "new_public_key": b64(new.raw)}).encode()


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class KeyRing:
    """Every signing key codex-lineage has had (their public halves), each with the time it was retired (None:
    the one in use). A signature verifies with the key its signed content names (key_id), or with any key of the
    ring when it names none (entries signed before key ids were recorded); a retired key vouches only for what
    was signed before its retirement (segment checks that against each checkpoint's and entry's time).

    The keyring file (MOE_AUDIT_KEYRING, exported as keyring.json):
    {"format": "moe-audit-keyring/1", "keys": [{"id": ..., "public_key": PEM, "retired_at": ISO 8601 | null,
                                               "introduced_by": {"key_id": ..., "signature": ...}}]}
    Every key after the first is introduced by the key it replaced: that key's signature over the rotation
    (rotation_message), made before its private half was destroyed. A keyring whose chain of rotations does not hold,
    or that retires a key in the future, is refused when it is read (from_json): whoever can write the file cannot
    add a key or promise a retirement."""

    def __init__(self, keys: list[PublicKey], retired: dict[str, datetime] | None = None,
                 introductions: dict[str, tuple[str, str]] | None = None) -> None:
        self.keys = {k.id: k for k in keys}
        self.retired = dict(retired or {})
        self.introductions = dict(introductions or {})  # new key id -> (the retired key's id, its signature)

    @classmethod
    def of(cls, key: PublicKey | KeyRing) -> KeyRing:
        return key if isinstance(key, KeyRing) else cls([key])

    @classmethod
    def from_json(cls, data: bytes, now: datetime | None = None) -> KeyRing:
        """The keyring, its rotations checked (ValueError: not a keyring, a broken chain, a future retirement)."""
        try:
            doc = json.loads(data)
            if doc.get("format") != KEYRING_FORMAT:
                raise ValueError(f"not a keyring (format {KEYRING_FORMAT} expected)")
            keys, retired, introductions = [], {}, {}
            for item in doc["keys"]:
                key = PublicKey.from_pem(str(item["public_key"]).encode())
                if key.id != item["id"]:
                    raise ValueError(f"key {item['id']}: its public key has the id {key.id}")
                keys.append(key)
                if item.get("retired_at"):
                    retired[key.id] = datetime.fromisoformat(str(item["retired_at"]).replace("Z", "+00:00"))
                if item.get("introduced_by"):
                    introductions[key.id] = (str(item["introduced_by"]["key_id"]),
                                             str(item["introduced_by"]["signature"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a keyring: {exc!r}") from None
        if not keys:
            raise ValueError("the keyring holds no key")
        ring = cls(keys, retired, introductions)
        ring.check(now or datetime.now(UTC))
        return ring

    def check(self, now: datetime) -> None:
        """No retirement in the future, and every key after the first introduced by a signed rotation of a key the
        ring retires (ValueError naming the key)."""
        for retired_id, at in self.retired.items():
            if at > now + RETIREMENT_SKEW:
                raise ValueError(f"key {retired_id} is retired at {_iso(at)}, in the future: a keyring records "
                                 "retirements that happened, never one to come (refused)")
        for new in list(self.keys.values())[1:]:
            old_id, signature = self.introductions.get(new.id, ("", ""))
            old = self.keys.get(old_id)
            if old is None or old_id not in self.retired:
                raise ValueError(f"key {new.id} is not introduced by a rotation of a retired key of the keyring: "
                                 "each new key must be signed over by the key it replaced (refused)")
            if not old.verifies(rotation_message(old_id, self.retired[old_id], new), signature):
                raise ValueError(f"key {new.id}: the rotation that introduces it is not signed by key {old_id} "
                                 "(refused)")

    def to_json(self) -> str:
        items = []
        for k in self.keys.values():
            item: dict[str, object] = {"id": k.id, "public_key": k.pem().decode(),
                                       "retired_at": _iso(self.retired[k.id]) if k.id in self.retired else None}
            if k.id in self.introductions:
                old_id, signature = self.introductions[k.id]
                item["introduced_by"] = {"key_id": old_id, "signature": signature}
            items.append(item)
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
