"""An API key's stored form: its SHA-256 digest (keys are never stored in the clear)."""

from __future__ import annotations

import hashlib


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
