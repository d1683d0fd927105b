"""The audit store in Postgres (asyncpg): records with their hash chains, the per-tenant daily roots and
the OpenLineage events. One Postgres schema per store, so a rebuild can go into a fresh one."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import asyncpg

from moe_core.audit.chain import GENESIS, Problem, fold_root, record_hash, verify_day, verify_request
from moe_core.audit.records import AuditRecord, iso, summarize

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.audit_records (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    broker_ts    timestamptz NOT NULL,
    response_id  text NOT NULL,
    tenant_id    text NOT NULL,
    message_type text NOT NULL,
    stage        text NOT NULL,
    created_at   timestamptz,
    payload      text NOT NULL,
    seq          integer NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    day          date NOT NULL,
    day_seq      bigint NOT NULL,
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS audit_records_rid ON {s}.audit_records (response_id, seq);
CREATE INDEX IF NOT EXISTS audit_records_day ON {s}.audit_records (tenant_id, day, day_seq);
CREATE TABLE IF NOT EXISTS {s}.audit_roots (
    tenant_id  text NOT NULL,
    day        date NOT NULL,
    records    bigint NOT NULL,
    root       text NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
CREATE TABLE IF NOT EXISTS {s}.lineage_events (
    id          bigserial PRIMARY KEY,
    response_id text,
    tenant_id   text,
    run_id      text NOT NULL,
    event_type  text NOT NULL,
    event_time  timestamptz NOT NULL,
    job_name    text NOT NULL,
    source_ts   timestamptz,
    origin      text NOT NULL,
    body        text NOT NULL,
    UNIQUE (run_id, event_type, event_time, job_name)
);
CREATE INDEX IF NOT EXISTS lineage_events_rid ON {s}.lineage_events (response_id, event_time);
"""


def quoted_schema(name: str) -> str:
    if not SCHEMA_NAME.match(name):
        raise ValueError(f"invalid Postgres schema name {name!r}: lower-case letters, digits and _")
    return f'"{name}"'


def content_of(row: Any) -> dict[str, Any]:
    """What a record's hash covers (the same fields whether they come from Kafka or from a row)."""
    return {"topic": row["topic"], "partition": row["partition"], "offset": row["offset"],
            "broker_ts": iso(row["broker_ts"]), "response_id": row["response_id"], "tenant_id": row["tenant_id"],
            "message_type": row["message_type"], "stage": row["stage"], "created_at": iso(row["created_at"]),
            "payload": row["payload"]}


def record_from_row(row: Any) -> AuditRecord:
    return AuditRecord(topic=row["topic"], partition=row["partition"], offset=row["offset"],
                       broker_ts=row["broker_ts"], response_id=row["response_id"], tenant_id=row["tenant_id"],
                       message_type=row["message_type"], stage=row["stage"], created_at=row["created_at"],
                       payload=json.loads(row["payload"]))


class AuditStore:
    def __init__(self, pool: asyncpg.Pool, schema: str = "audit") -> None:
        """`pool` must have been made by `connect` (its connections' search path starts with `schema`)."""
        self.pool = pool
        self.schema = schema
        self.s = quoted_schema(schema)

    @classmethod
    async def connect(cls, dsn: str, schema: str = "audit", *, migrate: bool = True) -> AuditStore:
        # The store's tables are found through the search path (its own schema, then public for api_keys).
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4,
                                         server_settings={"search_path": f"{quoted_schema(schema)},public"})
        store = cls(pool, schema)
        if migrate:
            await store.migrate()
        return store

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(424243)")
            try:
                await conn.execute(DDL.replace("{s}", self.s))
            finally:
                await conn.execute("SELECT pg_advisory_unlock(424243)")

    async def drop(self) -> None:
        await self.pool.execute("DROP SCHEMA IF EXISTS " + self.s + " CASCADE")

    async def append(self, record: AuditRecord, events: list[dict[str, Any]] | None = None) -> tuple[bool, int]:
        """Store a record at the end of its request's chain and its tenant's day chain, and its lineage events,
        in one transaction (once: a redelivered record is recognised by topic, partition and offset).
        Returns (the record was new, how many events were new)."""
        async with self.pool.acquire() as conn, conn.transaction():
            new = await self._append(conn, record)
            added = await self._insert_events(conn, events or [], response_id=record.response_id,
                                              tenant_id=record.tenant_id, source_ts=record.broker_ts, origin="derived")
        return new, added

    async def append_many(self, items: list[tuple[AuditRecord, list[dict[str, Any]]]]) -> int:
        """Several records and their events in one transaction and a handful of statements (a consumer batch).
        The locks of every request and tenant-day involved are taken first, in one order, so concurrent
        batches cannot deadlock; the chains are then extended here and written at once. Returns how many
        events were new."""
        days = {(r.tenant_id, r.broker_ts.date()) for r, _ in items}
        keys = sorted({r.response_id for r, _ in items} | {f"{t}\x1f{d}" for t, d in days})
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k "
                               "ORDER BY hashtext(k)", keys)
            seen = {(r["topic"], r["partition"], r["offset"]) for r in await conn.fetch(
                'SELECT topic, partition, "offset" FROM audit_records r JOIN unnest($1::text[], $2::int[], '
                '$3::bigint[]) AS k(t, p, o) ON r.topic = k.t AND r.partition = k.p AND r."offset" = k.o',
                [r.topic for r, _ in items], [r.partition for r, _ in items], [r.offset for r, _ in items])}
            heads = {r["response_id"]: (r["seq"], r["hash"]) for r in await conn.fetch(
                "SELECT DISTINCT ON (response_id) response_id, seq, hash FROM audit_records "
                "WHERE response_id = ANY($1::text[]) ORDER BY response_id, seq DESC",
                list({r.response_id for r, _ in items}))}
            roots = {(r["tenant_id"], r["day"]): (r["records"], r["root"]) for r in await conn.fetch(
                "SELECT tenant_id, day, records, root FROM audit_roots r JOIN unnest($1::text[], $2::date[]) "
                "AS k(t, d) ON r.tenant_id = k.t AND r.day = k.d", [t for t, _ in days], [d for _, d in days])}
            rows, event_rows = [], []
            for record, events in items:
                position = (record.topic, record.partition, record.offset)
                if position in seen:
                    continue
                seen.add(position)
                payload = json.dumps(record.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                seq, prev = heads.get(record.response_id, (0, GENESIS))
                digest = record_hash(prev, content_of({**record.__dict__, "payload": payload}))
                heads[record.response_id] = (seq + 1, digest)
                day = record.broker_ts.date()
                count, root = roots.get((record.tenant_id, day), (0, GENESIS))
                roots[(record.tenant_id, day)] = (count + 1, fold_root(root, digest))
                rows.append((record.topic, record.partition, record.offset, record.broker_ts, record.response_id,
                             record.tenant_id, record.message_type, record.stage, record.created_at, payload,
                             seq + 1, prev, digest, day, count + 1))
                event_rows += [_event_row(e, record.response_id, record.tenant_id, record.broker_ts, "derived")
                               for e in events]
            if rows:
                await conn.executemany(
                    'INSERT INTO audit_records (topic, partition, "offset", broker_ts, response_id, tenant_id, '
                    "message_type, stage, created_at, payload, seq, prev_hash, hash, day, day_seq) VALUES "
                    "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)", rows)
                touched = {(r[5], r[13]) for r in rows}
                await conn.executemany(
                    "INSERT INTO audit_roots (tenant_id, day, records, root) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (tenant_id, day) DO UPDATE SET records = EXCLUDED.records, root = EXCLUDED.root",
                    [(t, d, *roots[(t, d)]) for t, d in sorted(touched)])
            return await _insert_event_rows(conn, event_rows)

    async def _append(self, conn: Any, record: AuditRecord, *, locked: bool = False) -> bool:
        payload = json.dumps(record.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        day = record.broker_ts.date()
        if not locked:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k "
                               "ORDER BY hashtext(k)", sorted([record.response_id, f"{record.tenant_id}\x1f{day}"]))
        if await conn.fetchval('SELECT 1 FROM audit_records WHERE topic=$1 AND partition=$2 AND "offset"=$3',
                               record.topic, record.partition, record.offset):
            return False
        last = await conn.fetchrow("SELECT seq, hash FROM audit_records WHERE response_id=$1 "
                                   "ORDER BY seq DESC LIMIT 1", record.response_id)
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
        digest = record_hash(prev, content_of({**record.__dict__, "payload": payload}))
        # the tenant's day chain, advanced atomically on the locked row: root' = sha256(root + "\n" + hash)
        day_seq = await conn.fetchval(
            "INSERT INTO audit_roots AS r (tenant_id, day, records, root) VALUES ($1, $2, 1, $3) "
            "ON CONFLICT (tenant_id, day) DO UPDATE SET records = r.records + 1, "
            "root = encode(sha256(convert_to(r.root || E'\\n' || $4, 'UTF8')), 'hex') RETURNING records",
            record.tenant_id, day, fold_root(GENESIS, digest), digest)
        await conn.execute(
            'INSERT INTO audit_records (topic, partition, "offset", broker_ts, response_id, tenant_id, '
            "message_type, stage, created_at, payload, seq, prev_hash, hash, day, day_seq) VALUES "
            "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
            record.topic, record.partition, record.offset, record.broker_ts, record.response_id,
            record.tenant_id, record.message_type, record.stage, record.created_at, payload, seq, prev, digest,
            day, day_seq)
        return True

    async def add_events(self, events: list[dict[str, Any]], *, response_id: str | None, tenant_id: str | None,
                         source_ts: datetime | None, origin: str = "derived") -> int:
        """Store OpenLineage events (once each); how many were new."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._insert_events(conn, events, response_id=response_id, tenant_id=tenant_id,
                                             source_ts=source_ts, origin=origin)

    @staticmethod
    async def _insert_events(conn: Any, events: list[dict[str, Any]], *, response_id: str | None,
                             tenant_id: str | None, source_ts: datetime | None, origin: str) -> int:
        return await _insert_event_rows(conn, [_event_row(e, response_id, tenant_id, source_ts, origin)
                                               for e in events])

    async def owner(self, response_id: str) -> str | None:
        """The tenant of a request (None: no record of it)."""
        return await self.pool.fetchval("SELECT tenant_id FROM audit_records WHERE response_id=$1 "
                                        "AND tenant_id <> '-' ORDER BY seq LIMIT 1", response_id)

    async def records(self, response_id: str) -> list[AuditRecord]:
        rows = await self.pool.fetch("SELECT * FROM audit_records WHERE response_id=$1 ORDER BY seq",
                                     response_id)
        return [record_from_row(r) for r in rows]

    async def lineage(self, response_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT body FROM lineage_events WHERE response_id=$1 "
                                     "ORDER BY event_time, id", response_id)
        return [json.loads(r["body"]) for r in rows]

    async def lineage_between(self, since: datetime, until: datetime) -> set[str]:
        """The derived events whose source records are in [since, until) (for comparing stores)."""
        rows = await self.pool.fetch("SELECT body FROM lineage_events WHERE origin='derived' "
                                     "AND source_ts >= $1 AND source_ts < $2", since, until)
        return {r["body"] for r in rows}

    async def roots(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT tenant_id, day, records, root FROM audit_roots "
                                     "WHERE $1::text IS NULL OR tenant_id=$1 ORDER BY day, tenant_id", tenant_id)
        return [{"tenant_id": r["tenant_id"], "day": r["day"].isoformat(), "records": r["records"],
                 "root": r["root"]} for r in rows]

    async def verify(self, response_id: str) -> dict[str, Any]:
        """Recompute the request's chain and the day chains it belongs to; name every modified or deleted record."""
        rows = await self.pool.fetch("SELECT * FROM audit_records WHERE response_id=$1 ORDER BY seq",
                                     response_id)
        problems = verify_request([_chain_row(r) for r in rows])
        days = await self.pool.fetch(
            "SELECT DISTINCT r.tenant_id, r.day FROM audit_records r WHERE r.response_id=$1", response_id)
        for d in days:
            problems += await self.verify_day(d["tenant_id"], d["day"])
        return {"verified": not problems, "records": len(rows), "problems": [p.as_dict() for p in problems]}

    async def verify_day(self, tenant_id: str, day: Any) -> list[Problem]:
        rows = await self.pool.fetch("SELECT topic, partition, \"offset\", day_seq, hash FROM audit_records "
                                     "WHERE tenant_id=$1 AND day=$2 ORDER BY day_seq", tenant_id, day)
        root = await self.pool.fetchrow("SELECT records, root FROM audit_roots WHERE tenant_id=$1 "
                                        "AND day=$2", tenant_id, day)
        label = f"tenant {tenant_id} day {day.isoformat()}"
        chain = [{"day_seq": r["day_seq"], "hash": r["hash"], "name": _name(r)} for r in rows]
        return verify_day(chain, root["root"] if root else None, root["records"] if root else None, label)


def _event_row(event: dict[str, Any], response_id: str | None, tenant_id: str | None, source_ts: datetime | None,
               origin: str) -> tuple[Any, ...]:
    return (response_id, tenant_id, event["run"]["runId"], event.get("eventType") or "OTHER",
            datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")), event["job"]["name"], source_ts,
            origin, json.dumps(event, sort_keys=True, separators=(",", ":")))


async def _insert_event_rows(conn: Any, rows: list[tuple[Any, ...]]) -> int:
    """Insert lineage events (once each: unique run, type, time, job); how many were new. One statement."""
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    inserted = await conn.fetch(
        "INSERT INTO lineage_events (response_id, tenant_id, run_id, event_type, event_time, job_name, source_ts, "
        "origin, body) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], "
        "$6::text[], $7::timestamptz[], $8::text[], $9::text[]) ON CONFLICT DO NOTHING RETURNING 1",
        *[list(c) for c in columns])
    return len(inserted)


def _name(row: Any) -> str:
    return f"{row['topic']}/{row['partition']}/{row['offset']}"


def _chain_row(row: Any) -> dict[str, Any]:
    return {"seq": row["seq"], "prev_hash": row["prev_hash"], "hash": row["hash"], "name": _name(row),
            "content": content_of(row)}


def timeline(records: list[AuditRecord]) -> list[dict[str, Any]]:
    """A request's messages in order (broker time, then creation time, then position)."""
    ordered = sorted(records, key=lambda r: (r.broker_ts, r.created_at or r.broker_ts, r.topic, r.partition, r.offset))
    return [r.as_dict() for r in ordered]


__all__ = ["AuditStore", "summarize", "timeline"]
