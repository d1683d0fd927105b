"""`replay proof RESPONSE_ID --out FILE`: one request's entries with their RFC 6962 inclusion proofs against the first
witnessed checkpoint that covers them (moe-audit-proof/1), for `python -m moe_audit_verify FILE` with the auditor's
anchors. Reads the store only."""

from __future__ import annotations

import argparse
import json
import sys

from codex_lineage.settings import LineageSettings
from moe_core.audit.proofs import request_proof
from moe_core.audit.store import AuditStore


async def run_proof(settings: LineageSettings, args: argparse.Namespace) -> int:
    store = await AuditStore.connect(settings.postgres_dsn, settings.audit_schema, migrate=False)
    try:
        proof = await request_proof(store.pool, args.response_id)
    finally:
        await store.close()
    if proof is None:
        print(f"proof: no witnessed checkpoint covers {args.response_id} (no record of it, or none yet: one follows "
              "within MOE_AUDIT_CHECKPOINT_INTERVAL_S where a witness is configured)", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(proof, indent=1) + "\n")
    cp = proof["checkpoint"]["checkpoint"]
    print(f"proof of {args.response_id}: {len(proof['entries'])} entries against the checkpoint of size {cp['size']} "
          f"at {cp['time']} -> {args.out}\nverify it offline: python -m moe_audit_verify {args.out} --public-key <key> "
          "--tsa-chain <the TSA's chain> --witness-key <the witness's vkey>")
    return 0
