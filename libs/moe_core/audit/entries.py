"""The audit log's entries: what a Kafka record or an OpenLineage event becomes in a tenant's chain (its
signed content), and the way back from a stored row to that content (for verification and export)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moe_audit_verify.format import chain_hash, content_hash, entry_message
from moe_audit_verify.segment import Checkpoint, Entry
from moe_core.audit.records import AuditRecord, iso
from moe_core.audit.signer import Signer

COLUMNS = ("tenant_id", "seq", "kind", "recorded_at", "response_id", "topic", "partition", "offset", "broker_ts",
           "message_type", "stage", "created_at", "payload", "rseq", "run_id", "event_type", "event_time",
           "job_name", "source_ts", "origin", "body", "prev_hash", "hash", "signature", "key_id")
RECORD_FIELDS = ("response_id", "topic", "partition", "offset", "broker_ts", "message_type", "stage", "created_at",
                 "payload", "rseq")
EVENT_FIELDS = ("response_id", "run_id", "event_type", "event_time", "job_name", "source_ts", "origin", "body")
_EMPTY: dict[str, Any] = dict.fromkeys(COLUMNS)
TIMES = {"recorded_at", "broker_ts", "created_at", "event_time", "source_ts"}


# json.dumps's output with these arguments, from encoders made once (json.dumps makes one per call: issue 52)
_PAYLOAD_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_EVENT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def payload_text(payload: dict[str, Any]) -> str:
    return _PAYLOAD_JSON(payload)


def record_values(record: AuditRecord, rseq: int) -> dict[str, Any]:
    return {"response_id": record.response_id, "topic": record.topic, "partition": record.partition,
            "offset": record.offset, "broker_ts": record.broker_ts, "message_type": record.message_type,
            "stage": record.stage, "created_at": record.created_at, "payload": payload_text(record.payload),
            "rseq": rseq}


def event_values(event: dict[str, Any], response_id: str | None, source_ts: datetime | None,
                 origin: str) -> dict[str, Any]:
    return {"response_id": response_id, "run_id": event["run"]["runId"],
            "event_type": event.get("eventType") or "OTHER",
            "event_time": datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")),
            "job_name": event["job"]["name"], "source_ts": source_ts, "origin": origin,
            "body": _EVENT_JSON(event)}


def event_key(values: dict[str, Any]) -> tuple[str, str, datetime, str]:
    return values["run_id"], values["event_type"], values["event_time"], values["job_name"]


def content(kind: str, tenant_id: str, seq: int, recorded_at: datetime, values: Any,
            key_id: str | None = None) -> dict[str, Any]:
    """The signed content of an entry: JSON strings, integers and nulls only (times as ISO 8601, UTC), with the id
    of the key that signs it (entries signed before key ids were recorded have none)."""
    fields = RECORD_FIELDS if kind == "record" else EVENT_FIELDS
    out: dict[str, Any] = {"kind": kind, "tenant_id": tenant_id, "seq": seq, "recorded_at": iso(recorded_at)}
    if key_id is not None:
        out["key_id"] = key_id
    for name in fields:
        value = values[name]
        out[name] = iso(value) if name in TIMES else value
    return out


def content_of_row(row: Any) -> dict[str, Any]:
    return content(row["kind"], row["tenant_id"], row["seq"], row["recorded_at"], row, row.get("key_id"))


def entry_of_row(row: Any) -> Entry:
    return Entry(content_of_row(row), row["hash"], row["signature"])


def checkpoint_of_row(row: Any) -> Checkpoint:
    return Checkpoint(json.loads(row["body"]), row["signature"], row["timestamp"], row.get("note"))


def checkpoint_record(cp: Checkpoint) -> dict[str, Any]:
    """A checkpoint as it is published, appended to the checkpoint file and exported (one JSON line)."""
    record = {"checkpoint": cp.body, "signature": cp.signature, "timestamp": cp.timestamp}
    return record if cp.note is None else {**record, "note": cp.note}


@dataclass
class Head:
    seq: int
    hash: str


def seal(signer: Signer, head: Head, kind: str, tenant_id: str, recorded_at: datetime,
         values: dict[str, Any], signed: list[tuple[str, str]] | None = None) -> tuple[Any, ...]:
    """The next entry of a tenant's chain as a row (COLUMNS order); advances `head` and adds (content hash,
    signature) to `signed` (if given)."""
    seq = head.seq + 1
    body = content(kind, tenant_id, seq, recorded_at, values, signer.key_id)
    digest = content_hash(body)
    prev, head.seq, head.hash = head.hash, seq, chain_hash(head.hash, digest)
    signature = signer.sign(entry_message(digest))
    if signed is not None:
        signed.append((digest, signature))
    row = _EMPTY | values  # COLUMNS order kept: `values` has only columns
    row.update(tenant_id=tenant_id, seq=seq, kind=kind, recorded_at=recorded_at, prev_hash=prev, hash=head.hash,
               signature=signature, key_id=signer.key_id)
    return tuple(row.values())
