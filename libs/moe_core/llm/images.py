"""Images carried once, beside the bus: the gateway stores an image's bytes in Redis under its SHA-256 (with a
TTL), messages carry only an `ImageRef`, and the expert-worker reads the bytes back for the vision model.

A Kafka message stays small whatever the image (the broker's limit is about 1 MB; an image may be several),
and the same image sent twice is stored once.

Key: `images:<namespace>:<sha256>` -> the bytes, base64 (ASCII: the fleet's Redis clients decode responses).
"""

from __future__ import annotations

import base64
import hashlib

from redis.asyncio import Redis

from moe_core.contracts import ImageRef

# What a supported image's bytes start with; the type is taken from the bytes, never from the client's label.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(data: bytes) -> str | None:
    """The image type of `data` from its first bytes (PNG, JPEG, GIF, WebP), None for anything else."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_ref(data: bytes, media_type: str) -> ImageRef:
    return ImageRef(key=hashlib.sha256(data).hexdigest(), media_type=media_type, size=len(data))


def data_url(ref: ImageRef, b64: str) -> str:
    """The image as a data URL, the form OpenAI-compatible vision models take in an `image_url` part."""
    return f"data:{ref.media_type};base64,{b64}"


class ImageStore:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.prefix = f"images:{namespace}"

    def key(self, ref: ImageRef) -> str:
        return f"{self.prefix}:{ref.key}"

    async def put(self, ref: ImageRef, data: bytes, ttl_s: int) -> None:
        """Store (or keep longer) one image; the same bytes under the same key are idempotent."""
        await self.redis.set(self.key(ref), base64.b64encode(data).decode("ascii"), ex=max(1, ttl_s))

    async def get_b64(self, ref: ImageRef) -> str | None:
        """The image's bytes as base64, None when it expired (or never was stored)."""
        value = await self.redis.get(self.key(ref))
        if value is None:
            return None
        return value.decode("ascii") if isinstance(value, bytes) else str(value)
