"""No Cypher anywhere is built from text: a static scan of every Python file of the project.

Rule 1 (every file): no f-string, `+`, `%` or `.format()` touches a string that looks like Cypher.
Rule 2 (files that use Neo4j): the query handed to run / execute_query / read / write / tx_data is a
string literal, a module-level string constant (here or imported), a `LiteralString` parameter, a
loop variable over a module-level tuple of string constants, or a choice (x if c else y) between those.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]
ROOTS = [REPO / "libs", REPO / "services", REPO / "deploy"]
CYPHER = re.compile(r"\b(MATCH|MERGE|UNWIND|DETACH DELETE|OPTIONAL MATCH)\b|\(\w*:[A-Z]\w*[ {)]|\]->|<-\[")
QUERY_METHODS = {"run": 0, "execute_query": 0, "read": 0, "write": 0}
NOT_NEO4J_RECEIVERS = {"asyncio", "uvicorn", "subprocess", "self.proc"}


def _strings(node: ast.AST, constants: dict[str, str]) -> list[str]:
    """String literals in `node`, and the values of module-level string constants it names."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
        elif isinstance(n, ast.Name) and n.id in constants:
            out.append(constants[n.id])
    return out


def _looks_like_cypher(node: ast.AST, constants: dict[str, str]) -> bool:
    return any(CYPHER.search(s) for s in _strings(node, constants))


def built_from_text(tree: ast.Module) -> list[int]:
    """Lines where a Cypher-looking string is formatted or concatenated."""
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and _looks_like_cypher(node, constants):
            lines.add(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod) \
                and _looks_like_cypher(node, constants):
            lines.add(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in {"format", "replace", "join", "format_map"}
              and _looks_like_cypher(node, constants)):
            lines.add(node.lineno)
    return sorted(lines)


class _Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.constants: dict[str, ast.expr] = {}
        self.imports: dict[str, tuple[str, str]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.constants[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.constants[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)

    @staticmethod
    @functools.cache
    def of(path: Path) -> _Module:
        return _Module(path)

    def uses_neo4j(self) -> bool:
        return any(m.startswith(("neo4j", "moe_core.knowledge.graph")) for m, _ in self.imports.values()) or any(
            isinstance(n, ast.Import) and any(a.name == "neo4j" for a in n.names) for n in ast.walk(self.tree))


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    for root in [REPO / "libs", *sorted((REPO / "services").glob("*"))]:
        for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def _is_literal(node: ast.expr | None, tuple_ok: bool = False) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return tuple_ok and isinstance(node, ast.Tuple | ast.List) and all(_is_literal(e) for e in node.elts)


def _constant(mod: _Module, name: str, tuple_ok: bool = False, depth: int = 0) -> bool:
    if name in mod.constants:
        return _is_literal(mod.constants[name], tuple_ok)
    if name in mod.imports and depth < 3:
        module, original = mod.imports[name]
        path = _module_file(module)
        return path is not None and _constant(_Module.of(path), original, tuple_ok, depth + 1)
    return False


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _query_is_constant(mod: _Module, call: ast.Call, arg: ast.expr, parents: dict[ast.AST, ast.AST]) -> bool:
    if _is_literal(arg):
        return True
    if isinstance(arg, ast.IfExp):
        return _query_is_constant(mod, call, arg.body, parents) and _query_is_constant(mod, call, arg.orelse, parents)
    if not isinstance(arg, ast.Name):
        return False
    if _constant(mod, arg.id):
        return True
    scope = parents.get(call)
    while scope is not None and not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        if isinstance(scope, ast.For | ast.AsyncFor) and isinstance(scope.target, ast.Name) \
                and scope.target.id == arg.id and isinstance(scope.iter, ast.Name):
            return _constant(mod, scope.iter.id, tuple_ok=True)
        scope = parents.get(scope)
    if scope is not None:
        for a in [*scope.args.args, *scope.args.kwonlyargs]:
            if a.arg == arg.id and a.annotation is not None and "LiteralString" in ast.unparse(a.annotation):
                return True
    return False


def unsafe_queries(path: Path) -> list[int]:
    """Lines where a query handed to Neo4j is not provably a constant."""
    mod = _Module.of(path)
    if not mod.uses_neo4j():
        return []
    parents = _parents(mod.tree)
    lines = []
    for node in ast.walk(mod.tree):
        if not isinstance(node, ast.Call):
            continue
        arg: ast.expr | None = None
        if isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_METHODS and node.args:
            if ast.unparse(node.func.value) in NOT_NEO4J_RECEIVERS:
                continue
            arg = node.args[QUERY_METHODS[node.func.attr]]
        elif isinstance(node.func, ast.Name) and node.func.id == "tx_data" and len(node.args) > 1:
            arg = node.args[1]
        if arg is not None and not _query_is_constant(mod, node, arg, parents):
            lines.append(node.lineno)
    return lines


def _files() -> list[Path]:
    return sorted(p for root in ROOTS for p in root.rglob("*.py") if ".venv" not in p.parts)


def test_no_cypher_is_formatted_or_concatenated_anywhere() -> None:
    offenders = {str(p.relative_to(REPO)): lines for p in _files()
                 if (lines := built_from_text(_Module.of(p).tree))}
    assert offenders == {}


def test_every_query_sent_to_neo4j_is_a_constant() -> None:
    scanned = [p for p in _files() if _Module.of(p).uses_neo4j()]
    assert len(scanned) >= 10, "the scan must see the graph code"
    offenders = {str(p.relative_to(REPO)): lines for p in scanned if (lines := unsafe_queries(p))}
    assert offenders == {}


BAD = '''
from neo4j import AsyncGraphDatabase
QUERY = "MATCH (e:Entity) RETURN e"
async def f(db, tx, rel, name):
    await db.read(f"MATCH (a)-[r:{rel}]->(b) RETURN r")
    await db.write("MERGE (e:Entity {name: '" + name + "'})")
    await tx.run("MATCH (e:Entity {{name: '{}'}})".format(name))
    q = "MATCH (n) WHERE n.name = '%s'" % name
    await db.read(q)
    await tx_data(tx, QUERY + " LIMIT 1")
    await db.read(QUERY)
'''


def test_the_scan_catches_cypher_built_from_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text(BAD)
    assert built_from_text(ast.parse(BAD)) == [5, 6, 7, 8, 10]
    assert unsafe_queries(path) == [5, 6, 7, 9, 10]  # the last call, with a constant, is fine
