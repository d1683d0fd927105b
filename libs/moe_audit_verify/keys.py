"""codex-lineage's Ed25519 public keys (the one in use and the retired ones: the keyring) and the signatures they
verify."""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
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
ADOPTION_DOMAIN = b"moe-audit-keyring-adoption/1\n"
RETIREMENT_SKEW = timedelta(seconds=60)  # a rotation rounds its retirement up to the next second


def rotation_message(old_id: str, retired_at: datetime, new: PublicKey) -> bytes:
    """What the retiring key signs when it hands over to its successor: itself, when it retires, and the new key."""
    return ROTATION_DOMAIN + canonical({"retired": old_id, "retired_at": _iso(retired_at), "new": new.id,
                                        "new_public_key": b64(new.raw)}).encode()


def adoption_message(adopter: PublicKey, at: datetime, older: list[tuple[PublicKey, datetime | None]]) -> bytes:
    """What the key in use signs, once, when it adopts a keyring rotated before rotations were signed: itself, when,
    and every older key of the ring then, in order, each with its retirement (moe_core.audit.keyring.adopt)."""
    return ADOPTION_DOMAIN + canonical({
        "adopted_by": adopter.id, "adopted_by_public_key": b64(adopter.raw), "at": _iso(at),
        "keys": [{"id": k.id, "public_key": b64(k.raw), "retired_at": _iso(r) if r else None} for k, r in older]}
    ).encode()


@dataclass(frozen=True)
class Adoption:
    """The one-shot signature of a keyring's legacy chain (keys rotated before `introduced_by` existed): `key_id`,
    the key then in use and the last of `keys`, signed over every key up to it at `at`."""

    key_id: str
    at: datetime
    keys: tuple[str, ...]
    signature: str

    def to_json(self) -> dict[str, object]:
        return {"key_id": self.key_id, "at": _iso(self.at), "keys": list(self.keys), "signature": self.signature}

    @classmethod
    def from_json(cls, item: dict[str, object]) -> Adoption:
        keys = item["keys"]
        if not isinstance(keys, list):
            raise TypeError("adopted.keys is not a list")
        return cls(str(item["key_id"]), datetime.fromisoformat(str(item["at"]).replace("Z", "+00:00")),
                   tuple(str(k) for k in keys), str(item["signature"]))


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
    add a key or promise a retirement. A keyring rotated before rotations were signed carries instead, once, an
    "adopted" block: the key then in use signed every key up to it with its retirement (adoption_message; `python -m
    codex_lineage.adopt_keyring`); the keys after it are introduced as above."""

    def __init__(self, keys: list[PublicKey], retired: dict[str, datetime] | None = None,
                 introductions: dict[str, tuple[str, str]] | None = None, adoption: Adoption | None = None) -> None:
        self.keys = {k.id: k for k in keys}
        self.retired = dict(retired or {})
        self.introductions = dict(introductions or {})  # new key id -> (the retired key's id, its signature)
        self.adoption = adoption

    @classmethod
    def of(cls, key: PublicKey | KeyRing) -> KeyRing:
        return key if isinstance(key, KeyRing) else cls([key])

    @classmethod
    def from_json(cls, data: bytes, now: datetime | None = None, checked: bool = True) -> KeyRing:
        """The keyring, its rotations checked (ValueError: not a keyring, a broken chain, a future retirement);
        checked=False: read only (the adoption command reads a legacy keyring so)."""
        try:
            doc = json.loads(data)
            if doc.get("format") != KEYRING_FORMAT:
                raise ValueError(f"not a keyring (format {KEYRING_FORMAT} expected)")
            adoption = Adoption.from_json(doc["adopted"]) if doc.get("adopted") else None
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
        ring = cls(keys, retired, introductions, adoption)
        if checked:
            ring.check(now or datetime.now(UTC))
        return ring

    def check(self, now: datetime) -> None:
        """No retirement in the future, and every key after the first introduced by a signed rotation of a key the
        ring retires (ValueError naming the key)."""
        for retired_id, at in self.retired.items():
            if at > now + RETIREMENT_SKEW:
                raise ValueError(f"key {retired_id} is retired at {_iso(at)}, in the future: a keyring records "
                                 "retirements that happened, never one to come (refused)")
        adopted = self._check_adoption(now)
        for new in list(self.keys.values())[1:]:
            if new.id in adopted:
                continue
            old_id, signature = self.introductions.get(new.id, ("", ""))
            old = self.keys.get(old_id)
            if old is None or old_id not in self.retired:
                raise ValueError(f"key {new.id} is not introduced by a rotation of a retired key of the keyring: "
                                 "each new key must be signed over by the key it replaced (refused)")
            if not old.verifies(rotation_message(old_id, self.retired[old_id], new), signature):
                raise ValueError(f"key {new.id}: the rotation that introduces it is not signed by key {old_id} "
                                 "(refused)")

    def _check_adoption(self, now: datetime) -> set[str]:
        """The keys the adoption vouches for (none without one); ValueError when it does not hold: it must cover the
        ring's first keys in order, be signed by the last of them, then in use, over exactly what the ring says."""
        if self.adoption is None:
            return set()
        adoption, order = self.adoption, list(self.keys)
        covered = list(adoption.keys) == order[:len(adoption.keys)]
        if not covered or not adoption.keys or adoption.keys[-1] != adoption.key_id:
            raise ValueError("the keyring's adoption does not cover its first keys in order, ending with the key that "
                             "signed it (refused)")
        if adoption.at > now + RETIREMENT_SKEW or self.retired_by(adoption.key_id, adoption.at) is not None:
            raise ValueError(f"the keyring's adoption at {_iso(adoption.at)} is in the future or after key "
                             f"{adoption.key_id} was retired (refused)")
        adopter = self.keys[adoption.key_id]
        older = [(self.keys[i], self.retired.get(i)) for i in adoption.keys[:-1]]
        if not adopter.verifies(adoption_message(adopter, adoption.at, older), adoption.signature):
            raise ValueError(f"the keyring's adoption is not signed by key {adoption.key_id} over its keys and "
                             "retirements (refused)")
        return set(adoption.keys)

    def to_json(self) -> str:
        items = []
        for k in self.keys.values():
            item: dict[str, object] = {"id": k.id, "public_key": k.pem().decode(),
                                       "retired_at": _iso(self.retired[k.id]) if k.id in self.retired else None}
            if k.id in self.introductions:
                old_id, signature = self.introductions[k.id]
                item["introduced_by"] = {"key_id": old_id, "signature": signature}
            items.append(item)
        doc: dict[str, object] = {"format": KEYRING_FORMAT, "keys": items}
        if self.adoption is not None:
            doc["adopted"] = self.adoption.to_json()
        return json.dumps(doc, indent=1) + "\n"

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
