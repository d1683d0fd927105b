"""A rolled-back tenant's record continued under a new log (docs/operations.md, "Postgres restored to an earlier
point"). After a restore behind the witnessed checkpoint codex-lineage refuses to checkpoint the tenant: the
published checkpoint file and the witness hold a stretch the restored database no longer has. The operator who has
confirmed and reported the rollback writes a cut-over: a line in the same append-only checkpoint file, signed with
codex-lineage's key, naming the tenant, the rolled-back stretch, the log it leaves and the new log (origin) it
continues under. From then on the tenant's checkpoints go to the new origin (the witness provisions it as a new
log) and the published checkpoints before the cut-over no longer bind the database's chain; they stay in the file,
with the witness's state, as the evidence of the fork. Nothing is re-signed: the old checkpoints are untouched."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from moe_audit_verify.format import canonical
from moe_core.audit.signer import Signer

CUTOVER_FORMAT = "moe-audit-cutover/1"


def default_origin(log_name: str, tenant: str) -> str:
    return f"{log_name}/{tenant}"


def cutover_line(signer: Signer, body: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint file's line of a cut-over: its body and codex-lineage's signature over the canonical body."""
    return {"cutover": body, "signature": signer.sign(canonical(body).encode())}


def new_origin(log_name: str, tenant: str, previous: int) -> str:
    """The tenant's origin after its `previous`+1-th cut-over: <log_name>/log-2/<tenant>, log-3, ... (an origin is
    always <note key name>/<tenant>: the verifier reads the name of the key that signs its notes from it)."""
    return default_origin(f"{log_name}/log-{previous + 2}", tenant)


def read_cutovers(path: str) -> dict[str, list[dict[str, Any]]]:
    """Every cut-over in the checkpoint file, per tenant, in the file's order (none: an empty map)."""
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return found
    for line in lines:
        try:
            body = json.loads(line)["cutover"]
            datetime.fromisoformat(str(body["time"]))
            found.setdefault(str(body["tenant_id"]), []).append(body)
        except (ValueError, KeyError, TypeError):
            continue  # a checkpoint, or not a line of ours: the verifier reports the latter
    return found


def origins(path: str) -> dict[str, str]:
    """The origin each cut-over tenant's log continues under (the newest cut-over's)."""
    return {tenant: str(bodies[-1]["origin"]) for tenant, bodies in read_cutovers(path).items()}


def cut_times(path: str) -> dict[str, datetime]:
    """The time of each tenant's newest cut-over: published checkpoints up to it no longer bind its chain."""
    return {tenant: max(datetime.fromisoformat(str(b["time"])) for b in bodies)
            for tenant, bodies in read_cutovers(path).items()}
