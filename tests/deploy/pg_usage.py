"""What a package's code does with Postgres tables, read from its SQL (string literals, f-strings included):
SELECT (FROM, JOIN, RETURNING), INSERT (INSERT INTO), UPDATE (UPDATE … SET, ON CONFLICT … DO UPDATE,
SELECT … FOR UPDATE), DELETE (DELETE FROM). A static approximation, enough to catch a table (or a privilege)
that code uses and its service does not declare."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

NAME = r'(?:(?:"[^"]+"|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_$]*)\.)?"?([a-z_][a-z0-9_]*)(?![a-z0-9_])"?'
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE|ALTER TABLE)\b")
READS = re.compile(rf"\b(?:FROM|JOIN)\s+{NAME}(?!\s*\()")
INSERTS = re.compile(rf"\bINSERT INTO\s+{NAME}")
UPDATES = re.compile(rf"(?<!DO )\bUPDATE\s+{NAME}\s+(?:AS\s+\w+\s+)?SET\b")
DELETES = re.compile(rf"\bDELETE FROM\s+{NAME}")
CTES = re.compile(r"(?:\bWITH(?:\s+RECURSIVE)?|,)\s*([a-z_][a-z0-9_]*)\s+AS\s*\(")
NOT_TABLES = re.compile(r"^(pg_|information_schema|unnest|jsonb_|json_|generate_series)")


def strings(path: Path) -> Iterator[str]:
    """Every string literal of a module; an f-string with `{}` where its values go."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def uses(sql: str) -> set[tuple[str, str]]:
    """(table, privilege) pairs one SQL string needs."""
    if not SQL.search(sql):
        return set()
    ctes = set(CTES.findall(sql))
    out: set[tuple[str, str]] = set()
    deleted = {m.start() for m in re.finditer(r"\bDELETE FROM", sql)}
    for m in READS.finditer(sql):
        if m.start() - 7 not in deleted:
            out.add((m.group(1), "SELECT"))
    inserts = list(INSERTS.finditer(sql))
    for i, m in enumerate(inserts):  # an upsert needs UPDATE, RETURNING needs SELECT: up to the next INSERT
        rest = sql[m.end():inserts[i + 1].start() if i + 1 < len(inserts) else len(sql)]
        out.add((m.group(1), "INSERT"))
        if "DO UPDATE" in rest:
            out.add((m.group(1), "UPDATE"))
        if "RETURNING" in rest:
            out.add((m.group(1), "SELECT"))
    out |= {(t, "UPDATE") for t in UPDATES.findall(sql)}
    out |= {(t, "DELETE") for t in DELETES.findall(sql)}
    return {(t, p) for t, p in out if t not in ctes and not NOT_TABLES.match(t)}


def file_uses(path: Path) -> dict[tuple[str, str], list[str]]:
    """(table, privilege) -> where (file: the first characters of the SQL) for one module."""
    out: dict[tuple[str, str], list[str]] = {}
    for sql in strings(path):
        for use in uses(sql):
            out.setdefault(use, []).append(f"{path}: {' '.join(sql.split())[:80]}")
    return out


def package_uses(root: Path) -> dict[tuple[str, str], list[str]]:
    """The same for every module under root."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for use, where in file_uses(path).items():
            out.setdefault(use, []).extend(where)
    return out
