"""Which Redis key prefixes a service's code reaches, read from the code (not run): every prefix its own modules
spell, and every prefix spelled by the libs definitions it imports — followed through the definitions of the
same module they name and the libs names that module imports, so `from moe_core.llm.switches import experts_key`
reaches `experts:disabled:` but not the `mcp:disabled:` of `tools_key` beside it. A static approximation (calls
through attributes of objects handed in are not followed), enough to catch a service that reads a key it does not
declare (moe_core.runtime.redis_keys: its owner or one of its readers)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from pathlib import Path

LIBS = "moe_core"
Heads = Callable[[str], set[str]]
_NODE_HEADS: dict[tuple[str, str, str], set[str]] = {}  # a definition's prefixes, read once per session


@functools.cache
def _module(libs: Path, dotted: str) -> tuple[dict[str, ast.AST], dict[str, tuple[str, str]]] | None:
    """A libs module's top-level definitions (name -> node) and its `from moe_core.x import y` names."""
    parts = dotted.split(".")
    path = libs.joinpath(*parts).with_suffix(".py")
    if not path.exists():
        path = libs.joinpath(*parts, "__init__.py")
    if not path.exists():
        return None
    tree = ast.parse(path.read_text())
    defs: dict[str, ast.AST] = {}
    imported: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defs[target.id] = node
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == LIBS:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module or "", alias.name)
    return defs, imported


def reached(libs: Path, start: set[tuple[str, str]], heads: Heads) -> set[str]:
    """The prefixes spelled by the libs definitions `start` ((module, name) pairs) and what they name in turn."""
    found: set[str] = set()
    todo, seen = list(start), set(start)
    while todo:
        dotted, name = todo.pop()
        module = _module(libs, dotted)
        if module is None:
            continue
        defs, imported = module
        node = defs.get(name)
        if node is None:
            if name in imported:  # a name the module only hands on
                nxt = imported[name]
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
            continue
        key = (str(libs), dotted, name)
        if key not in _NODE_HEADS:
            _NODE_HEADS[key] = heads(ast.unparse(node))
        found |= _NODE_HEADS[key]
        for ref in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
            nxt = (dotted, ref) if ref in defs else imported.get(ref)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return found


def service_heads(folder: Path, libs: Path, heads: Heads) -> dict[str, list[str]]:
    """prefix -> where a service's code reaches it (its own file, or `via <libs module>.<name>`)."""
    out: dict[str, list[str]] = {}
    memo: dict[tuple[str, str], set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text()
        for head in heads(source):
            out.setdefault(head, []).append(path.name)
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == LIBS:
                for alias in node.names:
                    start = (node.module or "", alias.name)
                    if start not in memo:
                        memo[start] = reached(libs, {start}, heads)
                    for head in memo[start]:
                        out.setdefault(head, []).append(f"{path.name} via {node.module}.{alias.name}")
    return out
