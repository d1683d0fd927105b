"""The audit store's tables in one Postgres schema.

audit_log: one continuous chain per tenant (tenant_id, seq), holding both the Kafka records and the
OpenLineage events; each row is signed (moe_audit_verify.format). audit_checkpoints: signed tree heads with
their RFC 3161 timestamps. audit_records and lineage_events are read-only views over the log (the shapes
the readers knew). Nothing is ever updated or deleted: codex-lineage's role may only insert and read, readers
(the gateway) only read; the tables belong to a separate migrator role (codex_lineage.migrate)."""

from __future__ import annotations

import re
from typing import Any

from moe_core.runtime.pg import grants
from moe_core.runtime.pg.tables import READ, RECORDER, role_of, services

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIGRATION_LOCK = 424243

DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.audit_log (
    tenant_id    text NOT NULL,
    seq          bigint NOT NULL CHECK (seq > 0),
    kind         text NOT NULL CHECK (kind IN ('record', 'lineage')),
    recorded_at  timestamptz NOT NULL,
    response_id  text,
    topic        text,
    partition    integer,
    "offset"     bigint,
    broker_ts    timestamptz,
    message_type text,
    stage        text,
    created_at   timestamptz,
    payload      text,
    rseq         integer,
    run_id       text,
    event_type   text,
    event_time   timestamptz,
    job_name     text,
    source_ts    timestamptz,
    origin       text,
    body         text,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    signature    text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
ALTER TABLE {s}.audit_log ADD COLUMN IF NOT EXISTS key_id text;
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_position ON {s}.audit_log (topic, partition, "offset")
    WHERE kind = 'record';
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_event ON {s}.audit_log (run_id, event_type, event_time, job_name)
    WHERE kind = 'lineage';
CREATE INDEX IF NOT EXISTS audit_log_rid ON {s}.audit_log (response_id, seq);
CREATE INDEX IF NOT EXISTS audit_log_recorded ON {s}.audit_log (tenant_id, recorded_at);
CREATE INDEX IF NOT EXISTS audit_log_answers ON {s}.audit_log (broker_ts, tenant_id)
    WHERE kind = 'record' AND message_type = 'Answer';
CREATE INDEX IF NOT EXISTS audit_log_source_ts ON {s}.audit_log (source_ts) WHERE kind = 'lineage';
CREATE INDEX IF NOT EXISTS audit_log_lineage_inputs ON {s}.audit_log
    USING gin ((body::jsonb -> 'inputs') jsonb_path_ops) WHERE kind = 'lineage';
CREATE INDEX IF NOT EXISTS audit_log_audit_actions ON {s}.audit_log (tenant_id, ((payload::jsonb) ->> 'action'))
    WHERE kind = 'record' AND message_type = 'AuditEvent';
CREATE TABLE IF NOT EXISTS {s}.audit_checkpoints (
    tenant_id  text NOT NULL,
    size       bigint NOT NULL,
    root       text NOT NULL,
    time       timestamptz NOT NULL,
    key_id     text NOT NULL,
    body       text NOT NULL,
    signature  text NOT NULL,
    timestamp  text,
    PRIMARY KEY (tenant_id, time)
);
ALTER TABLE {s}.audit_checkpoints ADD COLUMN IF NOT EXISTS note text;
-- the checkpoint's Merkle tree as a compact range (32-byte hashes, largest subtree first): the next checkpoint
-- extends it by the leaves since instead of reading every leaf (moe_core.audit.tree); trusted only with its root
ALTER TABLE {s}.audit_checkpoints ADD COLUMN IF NOT EXISTS tree_range bytea;
CREATE INDEX IF NOT EXISTS audit_checkpoints_size ON {s}.audit_checkpoints (tenant_id, size);
CREATE OR REPLACE VIEW {s}.audit_records AS
    SELECT tenant_id, seq AS tenant_seq, rseq AS seq, response_id, topic, partition, "offset", broker_ts,
           message_type, stage, created_at, payload, recorded_at, prev_hash, hash, signature
    FROM {s}.audit_log WHERE kind = 'record';
CREATE OR REPLACE VIEW {s}.lineage_events AS
    SELECT tenant_id, seq AS tenant_seq, response_id, run_id, event_type, event_time, job_name, source_ts,
           origin, body, recorded_at
    FROM {s}.audit_log WHERE kind = 'lineage';
"""

# Before the signed log (issue 24) the store had per-request chains and daily roots in tables of these names;
# they are kept, renamed, for reference (they cannot be verified the new way).
LEGACY = ("audit_records", "lineage_events", "audit_roots")


def quoted_schema(name: str) -> str:
    if not SCHEMA_NAME.match(name):
        raise ValueError(f"invalid Postgres schema name {name!r}: lower-case letters, digits and _")
    return f'"{name}"'


async def migrate(conn: Any, schema: str, writer: str | None = None, readers: tuple[str, ...] = ()) -> None:
    """Create (or bring up to date) the store's tables as the connected role, which owns them; one migrator at a
    time; then the grants of the declaration (moe_core.runtime.pg.tables) to every declared service's role that exists.
    `writer` stands for codex-lineage's role (SELECT and INSERT, nothing else) if it has another name;
    `readers` (an operator's roles) get SELECT only. Role names go through format(%I)."""
    s = quoted_schema(schema)
    await conn.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
    try:
        async with conn.transaction():
            for table in LEGACY:
                if await conn.fetchval("SELECT c.relkind = 'r' FROM pg_class c JOIN pg_namespace n ON "
                                       "n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                                       schema, table):
                    await conn.execute(f'ALTER TABLE {s}."{table}" RENAME TO "{table}_v1"')
            await conn.execute(DDL.replace("{s}", s))
            await _grant(conn, schema, writer, readers)
    finally:
        await conn.execute(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")


async def _grant(conn: Any, schema: str, writer: str | None, readers: tuple[str, ...]) -> None:
    roles, _ = await grants.existing(conn, {s: role_of(s) for s in services()})
    named = [r for r in (writer, *readers) if r]
    _, missing = await grants.existing(conn, {r: r for r in named}, own=True)
    if missing:
        raise ValueError(f"the audit store's role {missing[0]!r} does not exist")
    others, _ = await grants.existing(conn, {r: r for r in named})  # not the owner: it keeps its rights
    if writer in others:
        roles[RECORDER] = writer
    await grants.apply(conn, grants.grants("audit", schema, roles, {r: READ for r in readers if r in others}))
