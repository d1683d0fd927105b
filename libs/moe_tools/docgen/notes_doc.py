"""docs/architecture.md's tables of what each service keeps and what a redelivered message does, from each
declaration's Notes (moe_core.stage.spec.Notes); a declaration without them gets what its memo policy implies."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.stage.declaration import ServiceDeclaration
from moe_core.stage.spec import Notes, Stage


def _declared(entry: stage_registry.Service) -> tuple[Notes, Stage | ServiceDeclaration | None]:
    declared = entry.declaration()
    return (declared.notes if declared is not None else Notes()), declared


def _memo(declared: Stage | ServiceDeclaration | None) -> str | None:
    return declared.memo.prefix if isinstance(declared, Stage) and declared.memo is not None else None


def state(repo: Path) -> str:
    lines = ["| service | state |", "|---|---|"]
    for entry in stage_registry.FLEET:
        notes, declared = _declared(entry)
        memo = _memo(declared)
        kept = notes.keeps or (f"Redis `{memo}:*` (its outcome memo)" if memo else "nothing declared")
        lines.append(f"| {entry.name} | {kept} |")
    return "\n".join(lines)


def redelivery(repo: Path) -> str:
    lines = ["| service | dedupe | on redelivery |", "|---|---|---|"]
    for entry in stage_registry.FLEET:
        notes, declared = _declared(entry)
        memo = _memo(declared)
        dedupe = notes.dedupe or (f"`Memo` under `{memo}` (Redis `SET NX`, first writer wins)" if memo
                                  else "none declared")
        again = notes.redelivery or ("republishes the stored outcome instead of doing the work again" if memo
                                     else "handled again")
        lines.append(f"| {entry.name} | {dedupe} | {again} |")
    return "\n".join(lines)
