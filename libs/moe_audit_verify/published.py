"""The published checkpoints (the append-only file codex-lineage writes, MOE_AUDIT_CHECKPOINT_FILE, one JSON line
per checkpoint as on the topic) against an export's: every checkpoint of the export must be among the published
ones, unchanged, and every published checkpoint of the tenant within the export's span must be in the export.
This is what catches an operator who deleted the newest records together with their checkpoints, or who
re-made the database's checkpoints: the published copies were outside the database's reach."""

from __future__ import annotations

import json
from pathlib import Path

from moe_audit_verify.segment import Checkpoint, Problem


class PublishedError(ValueError):
    """The published file cannot be read at all."""


def read_published(path: Path, tenant: str) -> tuple[dict[str, Checkpoint], list[Problem]]:
    """The tenant's published checkpoints by time (as written in the body), and lines that are not checkpoints."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PublishedError(f"published checkpoints: cannot read {path} ({exc})") from None
    found: dict[str, Checkpoint] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if isinstance(item, dict) and isinstance(item.get("cutover"), dict):
                continue  # a tenant's record continued under a new log after a rollback: not a checkpoint
            cp = Checkpoint(item["checkpoint"], item["signature"], item.get("timestamp"))
            _ = (cp.size, cp.time, cp.body["tenant_id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            problems.append(Problem(f"{path.name} line {number}", "not a published checkpoint"))
            continue
        if cp.body["tenant_id"] == tenant:
            found[str(cp.body["time"])] = cp
    return found, problems


def compare(bundle: list[Checkpoint], published: dict[str, Checkpoint], source: str) -> list[Problem]:
    """Findings naming each export checkpoint missing from or differing from the published ones, and each
    published checkpoint of the export's span missing from the export."""
    problems: list[Problem] = []
    ours = {str(cp.body.get("time")): cp for cp in bundle}
    for time, cp in sorted(ours.items()):
        theirs = published.get(time)
        if theirs is None:
            problems.append(Problem(cp.name, f"not among the published checkpoints ({source}): made or re-made "
                                             "in the database, never published"))
            continue
        changed = sorted(k for k in set(cp.body) | set(theirs.body) if cp.body.get(k) != theirs.body.get(k))
        if cp.signature != theirs.signature:
            changed.append("signature")
        if changed:
            problems.append(Problem(cp.name, f"differs from the published checkpoint of that time ({source}): "
                                             f"{', '.join(changed)}"))
    if ours:
        first, last = min(c.time for c in bundle), max(c.time for c in bundle)
        for time, cp in sorted(published.items()):
            if time not in ours and first <= cp.time <= last:
                problems.append(Problem(cp.name, f"published ({source}) but not in the export: removed from the "
                                                 "database (with the records it covered?)"))
    return problems
