"""The signed formats: a chain entry's content and hash, the message its signature covers, a checkpoint (a
signed tree head: tenant, size, root, time, key id) and the bytes its signature and timestamp cover.

Every value in a content or checkpoint is a JSON string, integer or null, so the canonical JSON (sorted
keys, no spaces, UTF-8) is the same wherever it is computed."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of a tenant's first entry
ENTRY_DOMAIN = b"moe-audit-entry/1\n"
CHECKPOINT_FORMAT = "moe-audit-checkpoint/1"
EXPORT_FORMAT = "moe-audit-export/1"
EVIDENCE_FORMAT = "moe-evidence/1"  # an evidence bundle (moe_audit_verify.evidence)
MANIFEST_DOMAIN = b"moe-evidence-manifest/1\n"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: dict[str, Any]) -> str:
    """SHA-256 of an entry's canonical content (which holds its tenant and its place in the chain: seq)."""
    return hashlib.sha256(canonical(content).encode()).hexdigest()


def chain_hash(prev_hash: str, content_hash_: str) -> str:
    """The chain: each entry's hash covers the previous entry's hash and its own content hash."""
    return hashlib.sha256(f"{prev_hash}\n{content_hash_}".encode()).hexdigest()


def entry_message(content_hash_: str) -> bytes:
    """What an entry's Ed25519 signature covers."""
    return ENTRY_DOMAIN + content_hash_.encode()


def checkpoint_bytes(checkpoint: dict[str, Any]) -> bytes:
    """What a checkpoint's signature and its RFC 3161 timestamp cover."""
    return canonical(checkpoint).encode()


def manifest_message(manifest: bytes) -> bytes:
    """What an evidence bundle's manifest signature (manifest.sig) covers: the manifest file's exact bytes."""
    return MANIFEST_DOMAIN + manifest


def key_id(raw_public_key: bytes) -> str:
    """A public key's id: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


def entry_name(content: dict[str, Any]) -> str:
    """How findings name an entry: its place in the chain and what it is."""
    seq = content.get("seq")
    if content.get("kind") == "record":
        return f"seq {seq} ({content.get('topic')}/{content.get('partition')}/{content.get('offset')})"
    if content.get("kind") == "lineage":
        event = f"{content.get('job_name')} {content.get('event_type')}"
        return f"seq {seq} (lineage {event} of {content.get('response_id')})"
    return f"seq {seq}"
