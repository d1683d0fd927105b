"""`replay export --tenant T --since … --until … --out DIR`: a tenant's period as a self-contained bundle for
the standalone verifier (python -m moe_audit_verify DIR; the layout is described in moe_audit_verify.bundle).

The entries run from just after the last checkpoint made at or before `since` (or from the chain's start) to
the first checkpoint made at or after `until`; when there is none yet (the period just ended) one is made
now, with codex-lineage's key and the timestamp authority, and published like every checkpoint."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from codex_lineage.anchoring import standalone_anchoring
from codex_lineage.evidence.gather import ExportError, period_stretch
from codex_lineage.settings import LineageSettings
from moe_audit_verify.format import EXPORT_FORMAT
from moe_audit_verify.keys import PublicKey
from moe_core.audit.checkpoints import Anchoring, ChainBroken, checkpoint
from moe_core.audit.entries import checkpoint_of_row, checkpoint_record, content_of_row
from moe_core.audit.proofs import tree_material
from moe_core.audit.records import iso
from moe_core.audit.signer import Signer, SigningKeyError
from moe_core.audit.store import AuditStore
from moe_core.audit.tsa import TsaError
from moe_core.contracts import Topics


async def export_period(settings: LineageSettings, tenant: str, since: datetime, until: datetime, out: Path) -> int:
    try:
        if until <= since:
            raise ExportError("--until must be after --since")
        _check_target(out)
        # its own role: a period that just ended may need a closing checkpoint (an INSERT)
        store = await AuditStore.connect(settings.audit_writer_dsn or settings.postgres_dsn, settings.audit_schema,
                                         migrate=False)
        try:
            written = await _export(settings, store, tenant, since, until, out)
        except asyncpg.UndefinedTableError:
            raise ExportError(f"the audit store {settings.audit_schema!r} does not exist") from None
        finally:
            await store.close()
    except ExportError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    print(f"exported tenant {tenant}, {iso(since)} .. {iso(until)}: {written['in_period']} entries of the period "
          f"({written['entries']} with the stretch to the checkpoints around it, seq {written['first_seq']}.."
          f"{written['last_seq']}), {written['checkpoints']} checkpoints -> {out}")
    print(f"verify it offline: python -m moe_audit_verify {out} --public-key <codex-lineage's public key> "
          "--tsa-chain <the TSA's certificate chain> --witness-key <the witness's vkey> --published <your own copy "
          "of the published checkpoints> (the export's own copies of the keys are not trusted)")
    return 0


async def _export(settings: LineageSettings, store: AuditStore, tenant: str, since: datetime, until: datetime,
                  out: Path) -> dict[str, Any]:
    stretch = await period_stretch(store.pool, tenant, since, until, lambda t: close_period(settings, store, t))
    key = _public_key(settings)
    manifest = {"format": EXPORT_FORMAT, "tenant_id": tenant, "since": iso(since), "until": iso(until),
                "first_seq": stretch.first_seq, "last_seq": stretch.last_seq, "entries": len(stretch.rows),
                "in_period": stretch.in_period, "checkpoints": len(stretch.checkpoints),
                "key_id": PublicKey.from_pem(key).id,
                "exported_at": iso(await store.pool.fetchval("SELECT clock_timestamp()"))}
    entries = [{"content": content_of_row(r), "hash": r["hash"], "signature": r["signature"]} for r in stretch.rows]
    checkpoints = [checkpoint_record(checkpoint_of_row(r)) for r in stretch.checkpoints]
    tree = await tree_material(store.pool, tenant, stretch.first_seq - 1, max(r["size"] for r in stretch.checkpoints))
    _write(out, manifest, entries, checkpoints, key, settings.audit_tsa_chain, settings.audit_keyring)
    _write_tree(out, tree, settings.audit_witness_key)
    return manifest


def _write_tree(out: Path, tree: dict[str, Any], witness_key: str) -> None:
    (out / "tree.json").write_text(json.dumps(tree, indent=1) + "\n")
    if witness_key:  # a copy, like the public key's: the auditor verifies with their own
        (out / "witness.vkey").write_bytes(Path(witness_key).read_bytes())


async def close_period(settings: LineageSettings, store: AuditStore, tenant: str) -> Any:
    """A checkpoint made now (the period or request just ended and none followed it yet), with codex-lineage's
    key and the timestamp authority, published like every checkpoint. Without the key (`make replay` is read-only)
    codex-lineage closes it: its next checkpoint, or its evidence API."""
    if not settings.audit_signing_key:
        raise ExportError("no checkpoint closes the period yet, and this command holds no signing key to make one: "
                          "codex-lineage makes it at its next checkpoint (MOE_AUDIT_CHECKPOINT_INTERVAL_S, when the "
                          "tenant's chain grew since), or ask its evidence API for the period (GET /v1/evidence), "
                          "which closes it with codex-lineage's key; then export again", 503)
    try:
        signer = Signer.from_file(settings.audit_signing_key)
        topic = Topics.for_namespace(settings.topic_namespace).audit_checkpoints
        async with standalone_anchoring(settings, signer, topic) as anchoring:
            return await close_now(store, anchoring, tenant)
    except SigningKeyError as exc:
        raise ExportError(f"no checkpoint closes the period yet, and none can be made now: {exc}", 503) from exc


async def close_now(store: AuditStore, anchoring: Anchoring, tenant: str) -> Any:
    """The stored row of a checkpoint of the tenant's chain made now with `anchoring` (ExportError, 503: none can
    be made: the timestamp authority is unreachable or the chain is broken)."""
    try:
        made = await checkpoint(store, tenant, anchoring, max_age=timedelta(0))
    except (TsaError, ChainBroken) as exc:
        raise ExportError(f"no checkpoint closes the period yet, and none can be made now: {exc}", 503) from exc
    if made is None:
        raise ExportError("could not make the checkpoint that closes the period; try again", 503)
    return await store.pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND time=$2", tenant,
                                     made.time)


def _public_key(settings: LineageSettings) -> bytes:
    if settings.audit_public_key:
        return Path(settings.audit_public_key).read_bytes()
    return Signer.from_file(settings.audit_signing_key).public.pem()


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory")


def _write(out: Path, manifest: dict[str, Any], entries: list[dict[str, Any]], checkpoints: list[dict[str, Any]],
           public_key: bytes, tsa_chain: str, keyring: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, items in (("entries.jsonl", entries), ("checkpoints.jsonl", checkpoints)):
        (out / name).write_text("".join(json.dumps(i, sort_keys=True, ensure_ascii=False) + "\n" for i in items))
    (out / "public-key.pem").write_bytes(public_key)
    if tsa_chain:
        (out / "tsa-chain.pem").write_bytes(Path(tsa_chain).read_bytes())
    if keyring:  # every key codex-lineage signed with: the period may span a key rotation
        (out / "keyring.json").write_bytes(Path(keyring).read_bytes())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
