"""A safe reader for maths text: normalised, parsed with `ast` (never evaluated), and checked against a
whitelist of node types, names and sizes. The numeric and the symbolic evaluators walk the result."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from mcp_service.tools.base import wrong

MAX_CHARS = 500
MAX_NODES = 200
MAX_ARGS = 4
MAX_LITERAL_EXPONENT = 1000

FUNCTIONS = frozenset({
    "sqrt", "cbrt", "exp", "ln", "log", "log10", "log2", "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
    "sinh", "cosh", "tanh", "abs", "round", "floor", "ceil", "factorial", "gcd", "lcm", "min", "max", "hypot",
    "degrees", "radians", "comb", "perm",
})
CONSTANTS = frozenset({"pi", "e", "tau", "E", "oo", "inf", "I"})
BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
SYMBOL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,19}$")

# times, middle dot, divide, minus, en dash, squared, cubed, root, pi, infinity; caret = power
_UNICODE = {"\u00d7": "*", "\u00b7": "*", "\u00f7": "/", "\u2212": "-", "\u2013": "-", "\u00b2": "**2",
            "\u00b3": "**3", "\u221a": "sqrt", "\u03c0": "pi", "\u221e": "oo", "^": "**"}
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*%\s*of\s+", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*%(?!\s*[\w(.])")
_IMPLICIT_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![eE][-+]?\d)(?=\s*[A-Za-z_(])")
_IMPLICIT_PAREN = re.compile(r"\)(?=\s*[\w(])")
_EXPONENT = re.compile(r"[eE][-+]?(\d+)")
_PREFIXED = re.compile(r"(?<![\w.])0(?:[xX][0-9a-fA-F]{1,64}|[bB][01]{1,256}|[oO][0-7]{1,86})(?![\w.])")


@dataclass(frozen=True)
class Parsed:
    text: str  # the normalised source (ast source segments refer to it)
    tree: ast.expr


def normalise(text: str) -> str:
    """User notation -> Python syntax: unicode operators, ^, 0x/0b/0o literals, '15% of 80', '15%', implicit
    products (2x)."""
    for old, new in _UNICODE.items():
        text = text.replace(old, new)
    text = _PREFIXED.sub(lambda m: str(int(m[0], 0)), text)  # 0xFF, 0b1010, 0o17 as decimal integers
    bad = re.search(r"(?<![\w.])0[xXbBoO]\w+", text)
    if bad:
        raise wrong(f"{bad[0][:70]!r} is not a valid hexadecimal, binary or octal number")
    text = _PERCENT_OF.sub(r"(\1/100)*", text)
    text = _PERCENT.sub(r"(\1/100)", text)
    text = _IMPLICIT_NUMBER.sub(r"\1*", text)
    return _IMPLICIT_PAREN.sub(")*", text)


def parse(text: str, *, symbols: bool = False) -> Parsed:
    """Parse one expression. `symbols` allows free variables (symbolic maths); otherwise only numbers,
    whitelisted functions and constants."""
    if not isinstance(text, str) or not text.strip():
        raise wrong("the expression is empty")
    if len(text) > MAX_CHARS:
        raise wrong(f"the expression is longer than {MAX_CHARS} characters")
    source = normalise(text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise wrong(f"cannot read the expression: {getattr(exc, 'msg', None) or exc}") from None
    nodes = 0
    for node in ast.walk(tree.body):
        nodes += 1
        if nodes > MAX_NODES:
            raise wrong(f"the expression has more than {MAX_NODES} parts")
        _check(node, source, symbols)
    return Parsed(source, tree.body)


def _check(node: ast.AST, source: str, symbols: bool) -> None:
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, BINARY):
            raise wrong(f"operator {type(node.op).__name__} is not allowed")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.UAdd | ast.USub):
            raise wrong(f"operator {type(node.op).__name__} is not allowed")
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise wrong("only numbers are allowed as literals")
        literal = ast.get_source_segment(source, node) or ""
        match = _EXPONENT.search(literal)
        if match and int(match.group(1)) > MAX_LITERAL_EXPONENT:
            raise wrong(f"a literal exponent is larger than {MAX_LITERAL_EXPONENT}")
    elif isinstance(node, ast.Name):
        if node.id in CONSTANTS or node.id in FUNCTIONS:
            return
        if not symbols:
            raise wrong(f"unknown name {node.id!r}")
        if not SYMBOL.match(node.id) or node.id.startswith("_"):
            raise wrong(f"{node.id!r} is not a valid variable name")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise wrong("only the whitelisted functions may be called")
        if node.keywords or not 1 <= len(node.args) <= MAX_ARGS:
            raise wrong(f"{node.func.id}() takes 1 to {MAX_ARGS} plain arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise wrong("argument unpacking is not allowed")
    elif not isinstance(node, ast.operator | ast.unaryop | ast.expr_context):
        raise wrong(f"{type(node).__name__} is not allowed in an expression")


def literal_text(parsed: Parsed, node: ast.Constant) -> str:
    """The literal as written (so 0.1 stays exactly one tenth)."""
    return ast.get_source_segment(parsed.text, node) or repr(node.value)
