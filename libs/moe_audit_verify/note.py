"""C2SP signed notes: a tenant's checkpoint (c2sp.org/tlog-checkpoint: origin, size, base64 root) signed by
codex-lineage's Ed25519 key, and a witness's cosignature over it (c2sp.org/tlog-cosignature, cosignature/v1).

A key is named (`name`) and identified by the first 4 bytes of SHA-256(name "\\n" type-byte public-key); the vkey
`name+hhhhhhhh+base64(type-byte public-key)` is what a verifier is given (type 0x01: Ed25519 note signatures,
0x04: Ed25519 cosignature/v1)."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519, COSIGNATURE_V1 = 1, 4
DASH = "\u2014 "


class NoteError(ValueError):
    pass


def key_hash(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class NoteKey:
    """A named Ed25519 public key of one type (a log's note key or a witness's cosignature key)."""

    name: str
    kind: int
    public: bytes

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.kind, self.public)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.hash.hex()}+{base64.b64encode(bytes([self.kind]) + self.public).decode()}"

    @classmethod
    def parse(cls, vkey: str) -> NoteKey:
        try:
            name, hash_hex, key64 = vkey.strip().split("+", 2)
            data = base64.b64decode(key64, validate=True)
        except ValueError:
            raise NoteError(f"not a vkey (name+hash+key): {vkey[:80]!r}") from None
        if len(data) != 33 or data[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError(f"vkey {name}: not an Ed25519 key")
        key = cls(name, data[0], data[1:])
        if key.hash.hex() != hash_hex:
            raise NoteError(f"vkey {name}: its key hash {hash_hex} does not match its key")
        return key

    def verifies(self, text: bytes, signature: bytes) -> bool:
        if self.kind == COSIGNATURE_V1:
            if len(signature) != 72:
                return False
            timestamp = struct.unpack(">Q", signature[:8])[0]
            message, signature = cosigned_message(timestamp, text), signature[8:]
        else:
            message = text
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def cosigned_message(timestamp: int, text: bytes) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def checkpoint_text(origin: str, size: int, root: bytes) -> bytes:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n".encode()


def signature_line(name: str, key: NoteKey, signature: bytes) -> str:
    return f"{DASH}{name} {base64.b64encode(key.hash + signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: bytes
    signatures: list[tuple[str, bytes, bytes]]  # (name, key hash, signature)

    @classmethod
    def parse(cls, note: str) -> Note:
        text, sep, sigs = note.rpartition("\n\n")
        if not sep:
            raise NoteError("not a signed note: no blank line before its signatures")
        out = []
        for line in sigs.splitlines():
            if not line.startswith(DASH):
                raise NoteError(f"not a signature line: {line[:80]!r}")
            name, _, data64 = line[len(DASH):].rpartition(" ")
            try:
                data = base64.b64decode(data64, validate=True)
            except ValueError:
                raise NoteError(f"signature of {name}: not base64") from None
            out.append((name, data[:4], data[4:]))
        return cls((text + "\n").encode(), out)

    def signed_by(self, key: NoteKey) -> bool:
        return any(name == key.name and h == key.hash and key.verifies(self.text, sig)
                   for name, h, sig in self.signatures)

    def checkpoint(self) -> tuple[str, int, bytes]:
        """(origin, size, root) of a checkpoint note."""
        lines = self.text.decode().split("\n")
        try:
            return lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
        except (IndexError, ValueError):
            raise NoteError("not a checkpoint: origin, size and base64 root expected") from None

    def cosigned_at(self, key: NoteKey) -> int | None:
        """The time (Unix seconds) at which the witness `key` cosigned, if it did."""
        for name, h, sig in self.signatures:
            if name == key.name and h == key.hash and key.verifies(self.text, sig):
                return int(struct.unpack(">Q", sig[:8])[0])
        return None


def with_cosignatures(note: str, lines: str) -> str:
    """The note with the witness's signature lines (its add-checkpoint answer) appended."""
    return note + "".join(line + "\n" for line in lines.splitlines() if line.startswith(DASH))
