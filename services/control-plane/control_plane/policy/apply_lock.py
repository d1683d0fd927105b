"""One application of a policy change at a time per fleet, across its control plane replicas: a Postgres advisory
lock named for what is applied and the fleet's namespace (MOE_TOPIC_NAMESPACE), waited for at most a bound and
then refused with ApplyBusy naming the session that holds it, so an application that hangs never makes every other
one hang with it. Held by the egress policy's pushes (egress_changes) and the guardrail rules' decisions
(guardrail_changes). Nothing here builds SQL at run time: the lock's name is a parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

LOCK = "SELECT pg_advisory_lock(hashtext($1::text))"
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext($1::text))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext($1::text))"
# who holds it, in this database (a one-key advisory lock is listed with the key's low 32 bits in objid, objsubid 1)
HOLDER = """
SELECT a.pid, a.application_name, a.client_addr::text AS client, a.state, a.backend_start, a.state_change,
       left(a.query, 300) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.objid = (hashtext($1::text)::bigint & 4294967295)::oid
"""


def lock_name(what: str, namespace: str) -> str:
    """The advisory lock's name (hashed to its key): `what` is applied ('egress-policy', 'guardrails')."""
    return f"moe:{what}:apply:{namespace}"


class ApplyBusy(Exception):
    """Another application held the apply lock for longer than the wait: `holder` is its session as Postgres lists
    it (empty when it let go meanwhile, or is not visible to this role)."""

    def __init__(self, what: str, holder: dict[str, Any]) -> None:
        super().__init__(f"the {what} apply lock is held by {holder or 'a session no longer listed'}")
        self.holder = holder


class ApplyLock:
    def __init__(self, pool: asyncpg.Pool, what: str, namespace: str) -> None:
        self.pool, self.what, self.name = pool, what, lock_name(what, namespace)

    @asynccontextmanager
    async def held(self, wait_s: float | None) -> AsyncIterator[asyncpg.Connection | None]:
        """The lock held on a connection of its own (yielded: what runs on it is inside the lock). `wait_s` None:
        tried once, None when another holds it (a background round skips its turn); else waited for at most
        `wait_s`, then ApplyBusy naming the holder. A lock the timeout's cancel came too late for is let go with
        the connection's reset when the pool takes it back."""
        async with self.pool.acquire() as conn:
            if wait_s is None:
                if not await conn.fetchval(TRY_LOCK, self.name):
                    yield None
                    return
            else:
                try:
                    await conn.execute(LOCK, self.name, timeout=wait_s)
                except TimeoutError:
                    raise ApplyBusy(self.what, await self.holder()) from None
            try:
                yield conn
            finally:
                try:
                    await conn.execute(UNLOCK, self.name)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    pass  # the connection is gone, and its session's lock with it

    async def holder(self) -> dict[str, Any]:
        """The session holding the lock ({} when none is listed)."""
        row = await self.pool.fetchrow(HOLDER, self.name, timeout=5)
        if row is None:
            return {}
        return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in dict(row).items()}
