"""The audit store in Postgres (asyncpg): one signed hash chain per tenant holding every Kafka record and every
OpenLineage event (audit_log), and the signed, timestamped checkpoints (audit_checkpoints). One Postgres schema
per store, so a rebuild can go into a fresh one. Only codex-lineage appends (it holds the signing key);
readers (the gateway, the replay command) open it without one."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from moe_audit_verify.format import GENESIS
from moe_core.audit.entries import COLUMNS, Head, event_key, event_values, record_values, seal
from moe_core.audit.records import AuditRecord, summarize
from moe_core.audit.schema import migrate, quoted_schema
from moe_core.audit.signer import Signer

# A batch's rows go in as one array per column, one statement (one execution, not one per row): the records' and the
# events' apart, each with only its own columns (asyncpg checks every array element, a None too: a row of 25 columns
# half NULL cost twice the checks, issue 52); the other kind's columns are NULL, `kind` a constant.
# (their arrays' order: SHARED, then OWN[kind]; _PICK takes them from a row in COLUMNS order)
SHARED = ("tenant_id", "seq", "recorded_at", "response_id", "prev_hash", "hash", "signature", "key_id")
OWN = {"record": ("topic", "partition", "offset", "broker_ts", "message_type", "stage", "created_at", "payload",
                  "rseq"),
       "lineage": ("run_id", "event_type", "event_time", "job_name", "source_ts", "origin", "body")}
INSERT = ('INSERT INTO audit_log (tenant_id, seq, kind, recorded_at, response_id, topic, partition, "offset", '
          'broker_ts, message_type, stage, created_at, payload, rseq, run_id, event_type, event_time, job_name, '
          "source_ts, origin, body, prev_hash, hash, signature, key_id) SELECT t, s, 'record', ra, r, tp, p, o, b, "
          'm, st, c, pl, rs, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ph, h, sg, k FROM unnest($1::text[], '
          '$2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],'
          ' $10::int[], $11::bigint[], $12::timestamptz[], $13::text[], $14::text[], $15::timestamptz[], '
          '$16::text[], $17::int[]) AS x(t, s, ra, r, ph, h, sg, k, tp, p, o, b, m, st, c, pl, rs) UNION ALL SELECT'
          " t, s, 'lineage', ra, r, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ru, e, et, j, so, og, bd,"
          ' ph, h, sg, k FROM unnest($18::text[], $19::bigint[], $20::timestamptz[], $21::text[], $22::text[], '
          '$23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::timestamptz[], $29::text[], '
          '$30::timestamptz[], $31::text[], $32::text[]) AS y(t, s, ra, r, ph, h, sg, k, ru, e, et, j, so, og, bd)')
_PICK = {kind: [COLUMNS.index(c) for c in (*SHARED, *OWN[kind])] for kind in OWN}
LOCK = "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k ORDER BY hashtext(k)"
# What a batch needs to know of the chains, read in one round trip once the locks are held: the time, which of its
# positions are stored already ($1-$3), each tenant's chain head ($4), each request's last record number ($5) and
# which of its events are stored already ($6-$9).
STATE = (
    "SELECT clock_timestamp() AS now, "
    "ARRAY(SELECT (l.topic, l.partition, l.\"offset\") FROM unnest($1::text[], $2::int[], $3::bigint[]) AS k(t, p, o) "
    "JOIN audit_log l ON l.topic = k.t AND l.partition = k.p AND l.\"offset\" = k.o WHERE l.kind = 'record') AS seen, "
    "ARRAY(SELECT (t, h.seq, h.hash) FROM unnest($4::text[]) AS t LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log "
    "WHERE tenant_id = t ORDER BY seq DESC LIMIT 1) h ON true) AS heads, "
    "ARRAY(SELECT (r, (SELECT max(rseq) FROM audit_log WHERE response_id = r AND kind = 'record')) "
    "FROM unnest($5::text[]) AS r) AS rseqs, "
    "ARRAY(SELECT (l.run_id, l.event_type, l.event_time, l.job_name) FROM unnest($6::text[], $7::text[], "
    "$8::timestamptz[], $9::text[]) AS k(r, e, t, j) JOIN audit_log l ON l.run_id = k.r AND l.event_type = k.e AND "
    "l.event_time = k.t AND l.job_name = k.j WHERE l.kind = 'lineage') AS events")
LockedEvent = tuple[dict[str, Any], str | None, str, datetime | None, str]  # event, response_id, tenant, ts, origin


def record_from_row(row: Any) -> AuditRecord:
    return AuditRecord(topic=row["topic"], partition=row["partition"], offset=row["offset"],
                       broker_ts=row["broker_ts"], response_id=row["response_id"], tenant_id=row["tenant_id"],
                       message_type=row["message_type"], stage=row["stage"], created_at=row["created_at"],
                       payload=json.loads(row["payload"]))


class AuditStore:
    def __init__(self, pool: asyncpg.Pool, schema: str = "audit", signer: Signer | None = None) -> None:
        """`pool` must have been made by `connect` (its connections' search path starts with `schema`)."""
        self.pool = pool
        self.schema = schema
        self.s = quoted_schema(schema)
        self.signer = signer
        # each tenant's head (seq, chain hash) as this process last committed it: a chain found below it, or with
        # another entry there, was cut under codex-lineage (checkpoints.checkpoint refuses it)
        self.written: dict[str, tuple[int, str]] = {}
        self.cut: dict[str, str] = {}  # tenants whose chain was found below that head when appending: why

    @classmethod
    async def connect(cls, dsn: str, schema: str = "audit", *, migrate: bool = True,
                      signer: Signer | None = None) -> AuditStore:
        # The store's tables are found through the search path (its own schema, then public for api_keys).
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4,
                                         server_settings={"search_path": f"{quoted_schema(schema)},public"})
        store = cls(pool, schema, signer)
        if migrate:
            await store.migrate()
        return store

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self, writer: str | None = None, readers: tuple[str, ...] = ()) -> None:
        async with self.pool.acquire() as conn:
            await migrate(conn, self.schema, writer, readers)

    async def exists(self) -> bool:
        return bool(await self.pool.fetchval("SELECT to_regclass($1)", f"{self.s}.audit_log"))

    async def drop(self) -> None:
        await self.pool.execute("DROP SCHEMA IF EXISTS " + self.s + " CASCADE")

    async def append(self, record: AuditRecord, events: list[dict[str, Any]] | None = None) -> tuple[bool, int]:
        """Store a record at the end of its tenant's chain, followed by its lineage events, in one transaction
        (once: a redelivered record is recognised by topic, partition and offset). Returns (the record was
        new, how many events were new)."""
        records, events_added = await self._append([(record, events or [])], [])
        return records == 1, events_added

    async def append_many(self, items: list[tuple[AuditRecord, list[dict[str, Any]]]]) -> int:
        """Several records and their events in one transaction (a consumer batch). Returns how many events
        were new."""
        return (await self._append(items, []))[1]

    async def add_events(self, events: list[dict[str, Any]], *, response_id: str | None, tenant_id: str | None,
                         source_ts: datetime | None, origin: str = "derived") -> int:
        """Store OpenLineage events (once each) in their tenant's chain ('-' when none); how many were new."""
        loose = [(e, response_id, tenant_id or "-", source_ts, origin) for e in events]
        return (await self._append([], loose))[1]

    async def _append(self, items: list[tuple[AuditRecord, list[dict[str, Any]]]],
                      loose: list[LockedEvent]) -> tuple[int, int]:
        """One transaction; once it is committed, the signer remembers what it signed for the next checkpoint's
        check (Signer.verifier)."""
        if self.signer is None:
            raise RuntimeError("this audit store was opened without the signing key: it cannot append")
        signed: list[tuple[str, str]] = []
        heads: dict[str, Head] = {}
        found: dict[str, Head] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            counts = await self._write(conn, self.signer, items, loose, signed, heads, found)
        self.signer.remember(signed)
        for tenant, head in found.items():  # the chain as found under the lock: never below what this process wrote
            if tenant not in self.written:
                continue
            seq, digest = self.written[tenant]
            if head.seq < seq or (head.seq == seq and head.hash != digest):
                self.cut.setdefault(tenant, f"codex-lineage wrote entries up to seq {seq}, then found the chain's "
                                            f"head at seq {head.seq}: entries were deleted from the database")
        self.written.update({t: (h.seq, h.hash) for t, h in heads.items()
                             if h.seq > self.written.get(t, (0, ""))[0]})
        return counts

    @staticmethod
    async def _write(conn: Any, signer: Signer, items: list[tuple[AuditRecord, list[dict[str, Any]]]],
                     loose: list[LockedEvent], signed: list[tuple[str, str]],
                     grown: dict[str, Head] | None = None, found: dict[str, Head] | None = None) -> tuple[int, int]:
        """The locks of every tenant chain and request involved are taken first, in one order (concurrent
        batches cannot deadlock); then the chains are extended here, signed, and inserted at once."""
        tenants = sorted({r.tenant_id for r, _ in items} | {e[2] for e in loose})
        rids = sorted({r.response_id for r, _ in items})
        keys = sorted({f"moe-audit-tenant\x1f{t}" for t in tenants} | {f"moe-audit-request\x1f{r}" for r in rids})
        await conn.execute(LOCK, keys)
        derived = [[event_values(e, r.response_id, r.broker_ts, "derived") for e in events] for r, events in items]
        loose_values = [(tenant, event_values(e, rid, ts, origin)) for e, rid, tenant, ts, origin in loose]
        event_keys = [event_key(v) for vs in derived for v in vs] + [event_key(v) for _, v in loose_values]
        # a statement of its own after the locks' (its snapshot is taken once they are held): what the chains hold
        state = await conn.fetchrow(STATE, [r.topic for r, _ in items], [r.partition for r, _ in items],
                                    [r.offset for r, _ in items], tenants, rids,
                                    *([list(c) for c in zip(*event_keys, strict=True)] if event_keys else [[]] * 4))
        now = state["now"]  # clock_timestamp() under the locks: recorded_at grows with seq
        seen = set(state["seen"])
        heads = {t: Head(seq or 0, digest or GENESIS) for t, seq, digest in state["heads"]}
        if found is not None:
            found.update({t: Head(h.seq, h.hash) for t, h in heads.items()})
        rseqs = {r: n or 0 for r, n in state["rseqs"]}
        existing = set(state["events"])
        pending: list[tuple[AuditRecord | None, str, list[dict[str, Any]]]] = []
        for (record, _), values in zip(items, derived, strict=True):
            if (record.topic, record.partition, record.offset) in seen:
                continue
            seen.add((record.topic, record.partition, record.offset))
            pending.append((record, record.tenant_id, values))
        pending += [(None, tenant, [value]) for tenant, value in loose_values]
        rows, added = [], 0
        for source, tenant, values in pending:
            if source is not None:
                rseqs[source.response_id] += 1
                rows.append(seal(signer, heads[tenant], "record", tenant, now,
                                 record_values(source, rseqs[source.response_id]), signed))
            for value in values:
                if event_key(value) not in existing:
                    existing.add(event_key(value))
                    rows.append(seal(signer, heads[tenant], "lineage", tenant, now, value, signed))
                    added += 1
        if rows:
            by_kind = {kind: [row for row in rows if row[2] == kind] for kind in OWN}
            await conn.execute(INSERT, *[[row[i] for row in by_kind[kind]] for kind in OWN for i in _PICK[kind]])
            if grown is not None:
                grown.update({row[0]: heads[row[0]] for row in rows})
        return sum(1 for r, _, _ in pending if r is not None), added

    async def owner(self, response_id: str) -> str | None:
        """The tenant of a request (None: no record of it)."""
        return await self.pool.fetchval("SELECT tenant_id FROM audit_log WHERE response_id=$1 AND kind='record' "
                                        "AND tenant_id <> '-' ORDER BY rseq LIMIT 1", response_id)

    async def records(self, response_id: str) -> list[AuditRecord]:
        rows = await self.pool.fetch("SELECT * FROM audit_log WHERE response_id=$1 AND kind='record' "
                                     "ORDER BY rseq, seq", response_id)
        return [record_from_row(r) for r in rows]

    async def lineage(self, response_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT body FROM audit_log WHERE response_id=$1 AND kind='lineage' "
                                     "ORDER BY event_time, seq", response_id)
        return [json.loads(r["body"]) for r in rows]

    async def lineage_between(self, since: datetime, until: datetime) -> set[str]:
        """The derived events whose source records are in [since, until) (for comparing stores)."""
        rows = await self.pool.fetch("SELECT body FROM audit_log WHERE kind='lineage' AND origin='derived' "
                                     "AND source_ts >= $1 AND source_ts < $2", since, until)
        return {r["body"] for r in rows}

    async def verify(self, response_id: str, trust: Any = None, witness: Any = None) -> dict[str, Any]:
        """The request's entries and the stretch of its tenant's chain around them, against the checkpoints
        (moe_core.audit.verify); `trust`: the public key and TSA chain; `witness`: the witness's key (a NoteKey)."""
        from moe_core.audit.verify import verify_request

        return await verify_request(self, response_id, trust, witness)


def timeline(records: list[AuditRecord]) -> list[dict[str, Any]]:
    """A request's messages in order (broker time, then creation time, then position)."""
    ordered = sorted(records, key=lambda r: (r.broker_ts, r.created_at or r.broker_ts, r.topic, r.partition, r.offset))
    return [r.as_dict() for r in ordered]


__all__ = ["AuditStore", "summarize", "timeline"]
