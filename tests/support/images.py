"""Real image bytes for tests: PNGs of random pixels (their size follows width x height: not compressible)."""

from __future__ import annotations

import base64
import random
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int = 4, height: int = 4, seed: int = 0) -> bytes:
    """A valid RGB PNG of random pixels (about width x height x 3 bytes)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 0))
            + _chunk(b"IEND", b""))


def png_of_size(size: int, seed: int = 0) -> bytes:
    """A PNG of at least `size` bytes."""
    side = max(1, int((size / 3) ** 0.5) + 1)
    return png(side, side, seed)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{b64(data)}"
