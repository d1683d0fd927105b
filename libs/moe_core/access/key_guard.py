"""Failed key lookups, throttled per client address: a flood of made-up keys would otherwise send every one
of them to Postgres (each unknown key is new, so the short negative cache does not help) and exhaust the
key store's small connection pool — a 503 for every client whose key is not cached.

Every lookup that is not answered from the replica's cache first takes a slot of the address's counter on
the gateway's limiter (moe_core.access.limits, one atomic Redis script, fleet-wide); a lookup that finds a key gives
its slot back, one that finds none keeps it. Past MOE_LIMIT_FAILED_KEY_LOOKUPS_PER_MINUTE slots held this
minute the address gets 429 (Retry-After: the rest of the minute) without a lookup; valid keys from other
addresses never notice, and keys verified lately (MOE_KEY_CACHE_TTL_S) keep working from that address too.
The address is the connection's peer, or the X-Forwarded-For hop uvicorn trusts (FORWARDED_ALLOW_IPS: set
it to the reverse proxy's address); IPv6 addresses count per /64, what one host typically holds. Redis
being down disables the throttle (logged), never authentication."""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict

from redis.exceptions import RedisError
from starlette.requests import Request

from moe_core.access.limits import Limiter, LimitExceeded, Reservation
from moe_core.runtime.observability.metrics import GATEWAY_LIMITED

log = logging.getLogger(__name__)
NAME = "failed_key_lookups_per_minute"
LOGGED_MAX = 1024


def client_address(request: Request) -> str:
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        return str(mapped) if mapped else str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class KeyGuard:
    def __init__(self, limiter: Limiter, per_minute: int) -> None:
        self.limiter = limiter
        self.per_minute = per_minute
        self._logged: OrderedDict[str, None] = OrderedDict()  # counters already named in the log (bounded)

    async def take(self, request: Request) -> Reservation | None:
        """A slot for one lookup from the request's address, or LimitExceeded (429); None: Redis is down."""
        address = client_address(request)
        counter = self.limiter.counter("client", address, NAME, self.per_minute)
        try:
            return await self.limiter.take(counter)
        except LimitExceeded as exc:
            GATEWAY_LIMITED.labels(exc.scope, exc.limit).inc()
            if counter.key not in self._logged:  # once per address and minute on this replica, not per request
                self._logged[counter.key] = None
                if len(self._logged) > LOGGED_MAX:
                    self._logged.popitem(last=False)
                log.warning("client %s: more than %d unknown API keys this minute; throttled (429) until it ends",
                            address, self.per_minute)
            raise
        except (RedisError, OSError) as exc:
            log.warning("failed key lookups cannot be counted (Redis): %s", exc)
            return None

    async def give_back(self, slot: Reservation | None) -> None:
        """The lookup found a key (or could not be made): its slot is free again."""
        if slot is None:
            return
        try:
            await self.limiter.settle(slot, 0, 0, requests=0)
        except (RedisError, OSError) as exc:
            log.warning("a key lookup's slot cannot be given back (Redis): %s", exc)
