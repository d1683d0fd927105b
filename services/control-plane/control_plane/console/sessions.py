"""Console sign-in sessions, kept server-side in Redis.

The admin key is split in two at sign-in: the browser's cookie holds a random pad as long as the key, Redis
holds the key XOR the pad (a one-time pad). Neither side alone holds the key, so a stolen cookie jar or a
Redis dump is not an admin key; a session ends when its Redis entry expires or on sign-out. The key is
re-verified on every console request (revoking it ends its sessions at once).

CSRF: the synchronizer token pattern (OWASP's first choice): a random token per session, kept in Redis and
sent back by every state-changing form as a hidden field; compared in constant time. The sign-in form, which
runs before any session, uses a double-submit cookie (`moe_console_login`, HttpOnly, SameSite=Strict).

A session opened by an OpenID Connect sign-in (console/oidc_login.py) holds a short-lived admin key minted for
the person's principal at sign-in (`minted`): signing out revokes it.

    console:<ns>:session:<sid>   hash {masked, csrf, key_id, minted}   TTL MOE_CONSOLE_SESSION_TTL_S
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

COOKIE = "moe_console"
LOGIN_COOKIE = "moe_console_login"
_SID_BYTES = 24


@dataclass(frozen=True)
class Session:
    sid: str
    token: str  # the admin key, rebuilt for this request only
    key_id: str
    csrf: str
    minted: bool = False  # the key was made for this session (OIDC sign-in): revoked at sign-out


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; a missing one is never equal."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class Sessions:
    def __init__(self, redis: Redis, namespace: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = f"console:{namespace}:session"
        self.ttl_s = ttl_s

    async def open(self, token: str, key_id: str, minted: bool = False) -> str:
        """A new session for a verified admin key; returns the cookie value (session id + pad)."""
        raw = token.encode()
        pad = secrets.token_bytes(len(raw))
        sid = secrets.token_urlsafe(_SID_BYTES)
        name = f"{self.prefix}:{sid}"
        await self.redis.hset(name, mapping={"masked": _xor(raw, pad).hex(), "csrf": secrets.token_urlsafe(32),
                                             "key_id": key_id, "minted": "1" if minted else ""})
        await self.redis.expire(name, self.ttl_s)
        return f"{sid}.{pad.hex()}"

    async def load(self, cookie: str | None) -> Session | None:
        sid, _, pad_hex = (cookie or "").partition(".")
        if not sid or not pad_hex or len(sid) > 64:
            return None
        found = await self.redis.hgetall(f"{self.prefix}:{sid}")
        if not found:
            return None
        try:
            masked, pad = bytes.fromhex(_text(found, "masked")), bytes.fromhex(pad_hex)
            token = _xor(masked, pad).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return Session(sid, token, _text(found, "key_id"), _text(found, "csrf"), _text(found, "minted") == "1")

    async def close(self, sid: str) -> None:
        await self.redis.delete(f"{self.prefix}:{sid}")


def _text(found: dict[Any, Any], name: str) -> str:
    value = found.get(name) or found.get(name.encode()) or ""
    return value.decode() if isinstance(value, bytes) else str(value)
