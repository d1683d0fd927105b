"""The house's size rules (issue 51), checked on every production module: no function in services/ or libs/ is over
60 lines, and codex-lineage's app factory stays under 40 (its wiring lives in parts, not in one long function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
LIMIT = 60


def long_functions(source: str, limit: int) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method longer than `limit` lines, decorators excluded."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append((node.name, node.lineno, length))
    return found


def _production_modules() -> list[Path]:
    return sorted(p for root in ("services", "libs") for p in (REPO / root).rglob("*.py")
                  if "tests" not in p.relative_to(REPO).parts)


def test_the_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"def f():\n{body}\n", LIMIT) == [("f", 1, LIMIT + 1)]
    assert long_functions(f"async def g():\n{body}\n", LIMIT + 1) == []


def test_no_production_function_is_over_60_lines() -> None:
    modules = _production_modules()
    assert len(modules) > 300  # the walk found the code
    over = [f"{p.relative_to(REPO)}:{line} {name} ({length} lines)"
            for p in modules for name, line, length in long_functions(p.read_text(), LIMIT)]
    assert over == [], "functions over 60 lines:\n  " + "\n  ".join(over)


def test_codex_lineages_create_app_is_under_40_lines() -> None:
    app = REPO / "services/codex-lineage/codex_lineage/app.py"
    tree = ast.parse(app.read_text())
    factory = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "create_app")
    assert (factory.end_lineno or factory.lineno) - factory.lineno + 1 < 40
