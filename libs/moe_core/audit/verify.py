"""Verifying a request in the audit store: its entries, the stretch of its tenant's chain between the signed
checkpoints around them (from the last checkpoint before its first entry to the first one after its last),
those checkpoints' signatures and RFC 3161 timestamps, and the request's own record sequence. The checks
are the standalone verifier's (moe_audit_verify), run on rows instead of an export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moe_audit_verify.keys import KeyRing, PublicKey
from moe_audit_verify.note import NoteKey
from moe_audit_verify.segment import Checkpoint, Problem, Trust, check_checkpoints, verify_chain
from moe_audit_verify.timestamps import TsaChain
from moe_audit_verify.witnessed import note_problem
from moe_core.audit.entries import checkpoint_of_row, entry_of_row


def load_trust(public_key: str, tsa_chain: str, max_skew_s: float = 300.0, keyring: str = "") -> Trust | str:
    """The verification material from files (MOE_AUDIT_PUBLIC_KEY, MOE_AUDIT_KEYRING: every key codex-lineage
    signed with, MOE_AUDIT_TSA_CHAIN), or why it is not there."""
    if not public_key and not keyring:
        return "no public key configured (MOE_AUDIT_PUBLIC_KEY): the signatures cannot be checked"
    try:
        ring = KeyRing.from_json(Path(keyring).read_bytes()) if keyring else KeyRing([])
        if public_key:
            key = PublicKey.from_pem(Path(public_key).read_bytes())
            ring.keys.setdefault(key.id, key)
        chain = TsaChain(Path(tsa_chain).read_bytes()) if tsa_chain else None
    except (OSError, ValueError) as exc:
        return f"the verification keys cannot be read: {exc}"
    return Trust(ring, chain, max_skew_s)


async def verify_request(store: Any, response_id: str, trust: Trust | str | None,
                         witness: NoteKey | None = None) -> dict[str, Any]:
    """`verified` only when nothing is wrong (`problems`) and nothing is missing (`missing`): the request's entries
    hold, a signed checkpoint covers them (`anchored`) and, where the deployment has a witness (its key given),
    that checkpoint carries the witness's cosignature over the Merkle root that includes them (`witnessed`)."""
    spans = await store.pool.fetch("SELECT tenant_id, min(seq) AS lo, max(seq) AS hi, count(*) FILTER (WHERE "
                                   "kind = 'record') AS records FROM audit_log WHERE response_id=$1 "
                                   "GROUP BY tenant_id ORDER BY tenant_id", response_id)
    records = sum(r["records"] for r in spans)
    if not isinstance(trust, Trust):
        problem = Problem("verification", trust or "no public key configured: the signatures cannot be checked")
        return {"verified": False, "records": records, "anchored": False, "witnessed": False,
                "missing": ["the public key"], "problems": [problem.as_dict()]}
    problems: list[Problem] = []
    anchored, unwitnessed = bool(spans), []
    for span in spans:
        found, covering = await _verify_stretch(store, span["tenant_id"], span["lo"], span["hi"], trust)
        problems += found
        anchored = anchored and covering is not None
        if covering is not None:
            why = note_problem(covering, trust, witness, span["tenant_id"]) if witness is not None else None
            unwitnessed += [f"{covering.name}: {why}"] if why else []
    rows = await store.pool.fetch("SELECT * FROM audit_log WHERE response_id=$1 AND kind='record' ORDER BY rseq",
                                  response_id)
    problems += _request_sequence(rows) + _refusals(rows)
    missing = _missing(spans, anchored, unwitnessed, witness)
    return {"verified": not problems and not missing, "records": records, "anchored": anchored,
            "witnessed": None if witness is None else anchored and not unwitnessed, "missing": missing,
            "problems": [p.as_dict() for p in problems]}


def _missing(spans: list[Any], anchored: bool, unwitnessed: list[str], witness: NoteKey | None) -> list[str]:
    """What keeps a request from being verified although nothing is wrong."""
    if not spans:
        return ["records: no stored record of this request"]
    if not anchored:
        return ["checkpoint: not yet covered by a signed checkpoint (one follows within MOE_AUDIT_CHECKPOINT_"
                "INTERVAL_S)"]
    if witness is not None and unwitnessed:
        return [f"witness cosignature: {u}" for u in unwitnessed]
    return []


async def _verify_stretch(store: Any, tenant: str, lo: int, hi: int,
                          trust: Trust) -> tuple[list[Problem], Checkpoint | None]:
    pool = store.pool
    before = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size < $2 "
                                 "ORDER BY size DESC, time DESC LIMIT 1", tenant, lo)
    after = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size >= $2 "
                                "ORDER BY time LIMIT 1", tenant, hi)
    first = before["size"] + 1 if before else 1
    rows = await pool.fetch("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size >= $2 AND ($3::bigint "
                            "IS NULL OR size <= $3) ORDER BY time", tenant, first - 1, after["size"] if after else None)
    checkpoints: list[Checkpoint] = [checkpoint_of_row(r) for r in rows]
    valid, problems = check_checkpoints(checkpoints, trust, tenant)
    end = after["size"] if after else None
    entries = await pool.fetch("SELECT * FROM audit_log WHERE tenant_id=$1 AND seq >= $2 AND ($3::bigint IS NULL "
                               "OR seq <= $3) ORDER BY seq", tenant, first, end)
    problems += verify_chain([entry_of_row(r) for r in entries], valid, trust.key, tenant, first,
                             require_anchor=False)
    covering = next((c for c in valid if c.size >= hi), None) if after is not None else None
    return problems, covering


def _request_sequence(rows: list[Any]) -> list[Problem]:
    """A request's records are numbered 1, 2, … in its tenant's chain (rseq, signed): a gap is a deletion."""
    problems, expected = [], 1
    for row in rows:
        if row["rseq"] > expected:
            missing = ", ".join(str(n) for n in range(expected, row["rseq"]))
            problems.append(Problem(f"request record {missing} (before {row['topic']}/{row['partition']}/"
                                    f"{row['offset']})", "missing: deleted from the store"))
        expected = row["rseq"] + 1
    return problems


def _refusals(rows: list[Any]) -> list[Problem]:
    """Messages of the request that codex-lineage refused to record because no declared producer of their topic
    signed them (a forged producer, an unsigned message): not in the chain, named by the dead letter codex-lineage
    recorded in their place. A request with one is never `verified`."""
    problems = []
    for row in rows:
        if row["message_type"] != "DeadLetter" or row["stage"] != "codex-lineage":
            continue
        letter = json.loads(row["payload"])
        if letter.get("error_type") == "producer_signature":
            problems.append(Problem(f"{letter.get('source_topic')}/{letter.get('partition')}/{letter.get('offset')} "
                                    f"(dead letter {row['topic']}/{row['partition']}/{row['offset']})",
                                    f"not recorded: {letter.get('reason')}"))
    return problems


def load_witness(value: str) -> NoteKey | None:
    """The witness's key (MOE_AUDIT_WITNESS_KEY: its vkey, or a file holding it; empty: the deployment has none)."""
    if not value:
        return None
    return NoteKey.parse(Path(value).read_text() if Path(value).is_file() else value)
