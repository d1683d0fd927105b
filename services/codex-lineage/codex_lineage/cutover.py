"""`python -m codex_lineage.cutover --tenant T --reason TEXT` (locally `make cut-over-audit-log TENANT=T
REASON=...`): continue a rolled-back tenant's record under a new log (moe_core.audit.cutover; the runbook "Postgres
restored to an earlier point" in docs/operations.md). Run it with codex-lineage stopped, after the rollback was
confirmed and reported; it refuses when the tenant's record is not rolled back (nothing to cut over from).

It appends a signed cut-over line to the checkpoint file (MOE_AUDIT_CHECKPOINT_FILE): the tenant, the rolled-back
stretch (seq kept+1..witnessed), the log it leaves and the new origin. The cut-over is on the record too: an
AuditEvent `audit_log.cut_over` (actor cli:<operating-system account>) on the audit topic, which codex-lineage stores
as the first entry of the tenant's new log. Then: provision the new origin at the witness (GET /v1/witness/logs lists
it once codex-lineage runs again) and start codex-lineage. Exit status: 0 cut over, 1 failed, 2 refused."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from codex_lineage.operator_cli import on_record, preflight
from codex_lineage.settings import LineageSettings
from moe_core.audit.checkpoints import file_outlet, published_heads
from moe_core.audit.cutover import CUTOVER_FORMAT, cutover_line, default_origin, new_origin, read_cutovers
from moe_core.audit.records import iso
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.knowledge.graph.audit import audit_event
from moe_core.runtime.publish_once import os_actor


class Refused(ValueError):
    """Nothing to cut over: the tenant's record is not rolled back."""


async def cut_over(store: AuditStore, settings: LineageSettings, signer: Signer, tenant: str,
                   reason: str) -> dict[str, Any]:
    """The cut-over's body, appended (signed) to the checkpoint file; Refused when the published checkpoint does not
    reach beyond the database's newest checkpoint of the tenant (no rollback)."""
    path = settings.audit_checkpoint_file
    published = published_heads(path).get(tenant)
    kept = await store.pool.fetchval("SELECT coalesce(max(size), 0) FROM audit_checkpoints WHERE tenant_id=$1",
                                     tenant)
    if published is None or int(published["size"]) <= kept:
        raise Refused(f"tenant {tenant}: its record is not rolled back (published checkpoint size "
                      f"{published['size'] if published else 'none'}, the database's newest {kept}): "
                      "nothing to cut over from")
    earlier = read_cutovers(path).get(tenant, [])
    body = {"format": CUTOVER_FORMAT, "tenant_id": tenant, "time": iso(datetime.now(UTC)), "key_id": signer.key_id,
            "rolled_back": {"from_seq": int(kept) + 1, "to_seq": int(published["size"]),
                            "witnessed_checkpoint": published["time"]},
            "from_origin": str(earlier[-1]["origin"]) if earlier else default_origin(settings.audit_log_name, tenant),
            "origin": new_origin(settings.audit_log_name, tenant, len(earlier)), "reason": reason[:2000]}
    await file_outlet(path)(cutover_line(signer, body))
    return body


async def _run(settings: LineageSettings, tenant: str, reason: str) -> dict[str, Any]:
    store = await AuditStore.connect(settings.audit_writer_dsn or settings.postgres_dsn, settings.audit_schema,
                                     migrate=False)
    try:
        return await cut_over(store, settings, Signer.from_file(settings.audit_signing_key), tenant, reason)
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codex_lineage.cutover", description=__doc__.splitlines()[0])
    p.add_argument("--tenant", required=True, help="the rolled-back tenant")
    p.add_argument("--reason", required=True, help="what happened (the restore, its time, the incident's reference)")
    args = p.parse_args(argv)
    settings = LineageSettings()
    refused = preflight("cutover", settings, ("MOE_AUDIT_SIGNING_KEY", "MOE_AUDIT_CHECKPOINT_FILE"),
                        "the cut-over could not be recorded: nothing was written")
    if refused is not None:
        return refused
    try:
        body = asyncio.run(_run(settings, args.tenant, args.reason))
    except Refused as exc:
        print(f"cutover refused: {exc}", file=sys.stderr)
        return 2
    stretch = body["rolled_back"]
    event = audit_event(None, actor=os_actor(), action="audit_log.cut_over", subject=f"audit-log:{body['origin']}",
                        reason=args.reason, tenant=args.tenant, response_id=f"audit-cutover-{body['time']}",
                        details={"from_origin": body["from_origin"], "origin": body["origin"], **stretch})
    if not on_record("cutover", settings, event, f"written to {settings.audit_checkpoint_file}",
                     " before starting codex-lineage"):
        return 1
    print(f"tenant {args.tenant} cut over from {body['from_origin']} to {body['origin']}: seq "
          f"{stretch['from_seq']}..{stretch['to_seq']} rolled back (witnessed up to the checkpoint of "
          f"{stretch['witnessed_checkpoint']}), kept in {settings.audit_checkpoint_file} as evidence. Provision "
          f"{body['origin']} at the witness and start codex-lineage again.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
