"""The Postgres tables of the fleet (docs/operations.md): owner, readers and writers with their privileges and
the roles they log in as, from moe_core.runtime.pg.tables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from moe_core.runtime.pg.tables import PRIVILEGES, TABLES, role_of


def _uses(table_access: Mapping[str, frozenset[str]], services: list[str]) -> str:
    return ", ".join(f"{s} (`{role_of(s)}`: {' '.join(p for p in PRIVILEGES if p in table_access[s])})"
                     for s in services) or "—"


def table(repo: Path) -> str:
    lines = ["| table | store | owner (migration) | readers | writers | what it holds |", "|---|---|---|---|---|---|"]
    for t in TABLES:
        access = t.access
        name = f"`{t.name}`" + (" (view)" if t.view else "")
        lines.append(f"| {name} | {t.store} | {t.owner} | {_uses(access, t.readers())} | "
                     f"{_uses(access, t.writers())} | {t.purpose} |")
    return "\n".join(lines)
