"""What someone with the audit store's owner rights (not codex-lineage's key) can do to a tenant's chain:
change, delete, move or insert rows, renumber them and recompute every hash. The signatures stay as they
were: nobody but codex-lineage can make new ones."""

from __future__ import annotations

from typing import Any

import asyncpg

from moe_audit_verify.format import GENESIS, chain_hash, content_hash
from moe_core.audit.entries import COLUMNS, content_of_row

PARK = 1_000_000_000  # seqs are moved out of the way first: (tenant_id, seq) is the primary key


class Attacker:
    def __init__(self, conn: asyncpg.Connection, schema: str, tenant: str) -> None:
        self.conn, self.tenant = conn, tenant
        self.table = f'"{schema}".audit_log'

    async def snapshot(self) -> list[asyncpg.Record]:
        return await self.conn.fetch(f"SELECT * FROM {self.table} WHERE tenant_id=$1 ORDER BY seq", self.tenant)

    async def restore(self, rows: list[asyncpg.Record]) -> None:
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        values = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
        async with self.conn.transaction():
            await self.conn.execute(f"DELETE FROM {self.table} WHERE tenant_id=$1", self.tenant)
            await self.conn.executemany(f"INSERT INTO {self.table} ({columns}) VALUES ({values})",
                                        [tuple(r[c] for c in COLUMNS) for r in rows])

    async def row(self, where: str, *args: Any) -> asyncpg.Record:
        found = await self.conn.fetchrow(f"SELECT * FROM {self.table} WHERE tenant_id=$1 AND {where} "
                                         "ORDER BY seq LIMIT 1", self.tenant, *args)
        assert found is not None, where
        return found

    async def execute(self, statement: str, *args: Any) -> None:
        await self.conn.execute(statement.replace("{table}", self.table), *args)

    async def shift(self, from_seq: int, delta: int) -> None:
        """Renumber every entry from `from_seq` on by `delta` (closing or opening a gap)."""
        await self.conn.execute(f"UPDATE {self.table} SET seq = seq + $3 WHERE tenant_id=$1 AND seq >= $2",
                                self.tenant, from_seq, PARK)
        await self.conn.execute(f"UPDATE {self.table} SET seq = seq - $2 + $3 WHERE tenant_id=$1 AND seq >= $2",
                                self.tenant, PARK, delta)

    async def swap(self, a: int, b: int) -> None:
        await self.conn.execute(f"UPDATE {self.table} SET seq = $2 WHERE tenant_id=$1 AND seq = $3", self.tenant,
                                PARK, a)
        await self.conn.execute(f"UPDATE {self.table} SET seq = $2 WHERE tenant_id=$1 AND seq = $3", self.tenant,
                                a, b)
        await self.conn.execute(f"UPDATE {self.table} SET seq = $2 WHERE tenant_id=$1 AND seq = $3", self.tenant,
                                b, PARK)

    async def rechain(self) -> None:
        """Recompute every entry's prev_hash and hash from its (changed) content, as the format says."""
        prev, updates = GENESIS, []
        for row in await self.snapshot():
            digest = chain_hash(prev, content_hash(content_of_row(row)))
            updates.append((self.tenant, row["seq"], prev, digest))
            prev = digest
        await self.conn.executemany(f"UPDATE {self.table} SET prev_hash=$3, hash=$4 WHERE tenant_id=$1 AND seq=$2",
                                    updates)
