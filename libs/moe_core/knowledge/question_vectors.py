"""The question's embedding, computed once per request and shared between processes through Redis.

The planner embeds `normalise(question)` for its semantic cache and router; graph-rag needs the same vector
for the tenant-document lookup. The planner writes it (in the Redis pipeline it already sends before the
plan is published) under the SHA-256 of the exact text embedded; graph-rag reads it (folded into a read it
already makes) and embeds only on a miss. A key names the model too, so a vector of another model is never
used. The value is 384 little-endian float32s in base64 (2 KiB; the fleet's Redis clients decode responses
as text), kept `TTL_S` seconds: long enough for a queued graph task.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import numpy as np

from moe_core.knowledge.embeddings import DIMENSION, MODEL_ID

TTL_S = 120
_BYTES = DIMENSION * 4


def key(namespace: str, text: str) -> str:
    """The Redis key of the vector of exactly `text` (already normalised by the caller)."""
    return f"qvec:{namespace}:{MODEL_ID}:{hashlib.sha256(text.encode()).hexdigest()}"


def encode(vector: Any) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decode(raw: bytes | str | None) -> list[float] | None:
    """The vector, or None for a missing or malformed value (then the reader embeds the text itself)."""
    if not raw:
        return None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) != _BYTES:
        return None
    vector: list[float] = np.frombuffer(data, dtype="<f4").tolist()
    return vector


def share(pipe: Any, namespace: str, text: str, vector: Any, ttl_s: int = TTL_S) -> Any:
    """Queue the SET of the vector of `text` on a Redis pipeline (or on a client: await what it returns)."""
    return pipe.set(key(namespace, text), encode(vector), ex=ttl_s)
