"""Who produced a message, proven: every service signs what it publishes with an Ed25519 key of its own
(MOE_PRODUCER_SIGNING_KEY, delivered to it alone like its Kafka credentials), and the consumers that act on a
message or record it (codex-lineage on every topic, graph-ingest on ingest) accept it only with a valid signature
of a service the stage declarations allow to publish on that topic (MOE_PRODUCER_KEYS: the generated list of the
services' public keys and topics, moe_core.stage.producers).

The signature covers the message's topic, key, producer name, message type and value bytes (one Ed25519 signature
per publish: about 50 µs of CPU for a 4 kB message on the 2-core test machine, a check about 130 µs); it
travels in two headers: `x-moe-signer` (the producer's name) and `x-moe-sig`
(base64). A Kafka principal that may write a topic can no longer speak for another service: the producer header is
what the signature proves, not what the sender says.

    signer = ProducerSigner.from_file("/run/secrets/producer-key", "planner")
    hdrs |= signer.headers(topic, key, value, "Plan")
    ProducerVerifier.from_file(path, topics).check(topic, key, value, hdrs)   # -> "planner", or ProducerRefused
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from moe_core.contracts import Topics, headers
from moe_core.runtime.signing_keys import load_private_key

DOMAIN = b"moe-producer-signature/1\n"
KEYS_FORMAT = "moe-producer-keys/1"


class ProducerKeyError(RuntimeError):
    """A producer key or the producers' key list cannot be used (missing, readable by everyone, not Ed25519)."""


class ProducerRefused(Exception):
    """A message no declared producer of its topic signed: `reason` is the metric's label, str() the finding."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def signed_bytes(topic: str, key: bytes | None, signer: str, message_type: str, value: bytes) -> bytes:
    """What a producer signature covers: each field length-prefixed, so no two messages share their bytes."""
    parts = [topic.encode(), key or b"", signer.encode(), message_type.encode(), value]
    return DOMAIN + b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


class ProducerSigner:
    """One service's signing key: the headers that prove a message is its own."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = key
        self.key_id = key_id(key.public_key())

    @classmethod
    def from_file(cls, path: str, name: str) -> ProducerSigner:
        key = load_private_key(path, ProducerKeyError, holder=name, missing=(
            f"no producer signing key at {path!r} (MOE_PRODUCER_SIGNING_KEY): generate the fleet's keys with "
            "python -m moe_core.stage.producers"))
        return cls(name, key)

    def headers(self, topic: str, key: bytes | None, value: bytes, message_type: str) -> dict[str, str]:
        signature = self._key.sign(signed_bytes(topic, key, self.name, message_type, value))
        return {headers.SIGNER: self.name, headers.SIGNATURE: base64.b64encode(signature).decode()}


@dataclass(frozen=True)
class Producer:
    name: str
    key: Ed25519PublicKey
    publishes: tuple[str, ...]  # topic kinds (Topics fields), from its declaration; the dead-letter topic too


def read_keys(path: str) -> dict[str, Producer]:
    """The producers' key list (moe_core.stage.producers writes it): {name: Producer}."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ProducerKeyError(f"the producers' key list {path!r} (MOE_PRODUCER_KEYS) cannot be read: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != KEYS_FORMAT:
        raise ProducerKeyError(f"{path}: not a {KEYS_FORMAT} list")
    out: dict[str, Producer] = {}
    for name, entry in (doc.get("producers") or {}).items():
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["key"], validate=True))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ProducerKeyError(f"{path}: producer {name}: not an Ed25519 public key ({exc})") from None
        out[name] = Producer(name, key, tuple(entry.get("publishes") or ()))
    return out


class ProducerVerifier:
    """The check every consumer that acts on a message makes: a valid signature of a declared producer of its
    topic. Returns the signer's name (what the record names as its producer)."""

    def __init__(self, producers: dict[str, Producer], topics: Topics) -> None:
        self.producers = producers
        self.allowed: dict[str, frozenset[str]] = {}
        for producer in producers.values():
            for kind in producer.publishes:
                name = getattr(topics, kind)
                self.allowed[name] = self.allowed.get(name, frozenset()) | {producer.name}

    @classmethod
    def from_file(cls, path: str, topics: Topics) -> ProducerVerifier:
        return cls(read_keys(path), topics)

    def check(self, topic: str, key: bytes | None, value: bytes | None, hdrs: dict[str, Any]) -> str:
        signer, signature = _text(hdrs.get(headers.SIGNER)), _text(hdrs.get(headers.SIGNATURE))
        claimed = _text(hdrs.get(headers.PRODUCER))
        if not signer or not signature:
            raise ProducerRefused("unsigned", f"unsigned: no producer signature ({headers.SIGNER}/"
                                              f"{headers.SIGNATURE}); it claims producer {claimed or '-'}")
        producer = self.producers.get(signer)
        if producer is None:
            raise ProducerRefused("unknown_signer", f"signed as {signer!r}, which has no key in the producers' list")
        if signer not in self.allowed.get(topic, frozenset()):
            raise ProducerRefused("not_a_producer", f"signed as {signer}, which is not a declared producer of "
                                                    f"{topic} (declared: {sorted(self.allowed.get(topic, ()))})")
        if claimed and claimed != signer:
            raise ProducerRefused("producer_mismatch", f"it claims producer {claimed} but is signed as {signer}")
        message = signed_bytes(topic, key, signer, _text(hdrs.get(headers.MESSAGE_TYPE)), value or b"")
        try:
            producer.key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError, binascii.Error):
            raise ProducerRefused("bad_signature", f"the signature is not {signer}'s over this message (topic, "
                                                   f"key, producer, type and bytes); it claims producer "
                                                   f"{claimed or '-'}") from None
        return signer


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""
