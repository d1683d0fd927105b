"""solve_equation and math: SymPy on expressions built from the whitelisted AST (never sympify on text)."""

from __future__ import annotations

import ast
from typing import Any

import sympy

from mcp_service.tools.base import ToolError, ToolOutput, approx, failed, wrong
from mcp_service.tools.expr import Parsed, literal_text, parse

MAX_EXPONENT = 1000
MAX_EQUATIONS = 4
MAX_RESULT_CHARS = 20_000
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "e": sympy.E, "E": sympy.E, "tau": 2 * sympy.pi,
                                    "oo": sympy.oo, "inf": sympy.oo, "I": sympy.I}
FUNCTIONS: dict[str, Any] = {
    "sqrt": sympy.sqrt, "cbrt": sympy.cbrt, "exp": sympy.exp, "ln": sympy.log, "log": sympy.log,
    "log10": lambda x: sympy.log(x, 10), "log2": lambda x: sympy.log(x, 2), "sin": sympy.sin, "cos": sympy.cos,
    "tan": sympy.tan, "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan, "atan2": sympy.atan2,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "abs": sympy.Abs, "floor": sympy.floor,
    "ceil": sympy.ceiling, "factorial": sympy.factorial, "gcd": sympy.gcd, "lcm": sympy.lcm, "min": sympy.Min,
    "max": sympy.Max, "degrees": lambda x: x * 180 / sympy.pi, "radians": lambda x: x * sympy.pi / 180,
    "hypot": lambda a, b: sympy.sqrt(a**2 + b**2), "comb": sympy.binomial, "perm": lambda n, k: sympy.ff(n, k),
    "round": lambda x, n=None: _round(x, sympy.Integer(0) if n is None else n),
}


def _round(x: Any, places: Any) -> Any:
    """Half away from zero, exact (like calculate)."""
    if not (x.is_number and x.is_real and getattr(places, "is_integer", False)) or abs(places) > 1000:
        raise failed("round() needs a real number and whole places (at most 1000)")
    exact = sympy.Rational(str(sympy.N(x, 60)))
    scale = sympy.Integer(10) ** int(places)
    rounded = sympy.floor(abs(exact) * scale + sympy.Rational(1, 2)) / scale
    return rounded if exact >= 0 else -rounded


class Builder:
    """AST -> SymPy expression, with bounded literal exponents and factorials."""

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed

    def build(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return sympy.Rational(literal_text(self.parsed, node))
        if isinstance(node, ast.Name):
            return CONSTANTS[node.id] if node.id in CONSTANTS else sympy.Symbol(node.id)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left, right = self.build(node.left), self.build(node.right)
            return _binary(node.op, left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self.build(a) for a in node.args]
            if node.func.id == "factorial" and args[0].is_number and abs(args[0]) > 1000:
                raise failed("factorial() is limited to 1000")
            try:
                result = FUNCTIONS[node.func.id](*args)
            except TypeError:
                raise wrong(f"{node.func.id}() got {len(args)} argument(s) it cannot take") from None
            return result
        raise wrong(f"{type(node).__name__} is not allowed")


def _binary(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Pow):
        if b.is_number and b.is_real and abs(b) > MAX_EXPONENT:
            raise failed(f"exponents are limited to ±{MAX_EXPONENT}")
        return a**b
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and b.is_zero:
        raise failed("division by zero")
    return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b,
            ast.FloorDiv: lambda: sympy.floor(a / b), ast.Mod: lambda: sympy.Mod(a, b)}[type(op)]()


def expression(text: str) -> Any:
    parsed = parse(text, symbols=True)
    return Builder(parsed).build(parsed.tree)


def _text(value: Any) -> str:
    out = str(value)
    if len(out) > MAX_RESULT_CHARS:
        raise ToolError("result_too_large", f"the result is longer than {MAX_RESULT_CHARS} characters")
    return out


def _variable(name: str | None, expr: Any) -> Any:
    if name:
        return sympy.Symbol(name)
    free = sorted(expr.free_symbols, key=str)
    if len(free) > 1:
        raise wrong(f"the expression has several variables ({', '.join(map(str, free))}); say which one")
    return free[0] if free else sympy.Symbol("x")


def solve_equation(args: dict[str, Any]) -> ToolOutput:
    parts = [p for p in args["equation"].replace("==", "=").split(";") if p.strip()]
    if not parts or len(parts) > MAX_EQUATIONS:
        raise wrong(f"give 1 to {MAX_EQUATIONS} equations separated by ';'")
    equations = []
    for part in parts:
        sides = part.split("=")
        if len(sides) > 2:
            raise wrong(f"an equation has more than one '=': {part.strip()[:60]}")
        lhs = expression(sides[0])
        equations.append(lhs - expression(sides[1]) if len(sides) == 2 else lhs)
    if all(sympy.simplify(e) == 0 for e in equations):
        return ToolOutput(f"{args['equation'].strip()} holds for every value.",
                          {"equation": args["equation"], "solutions": [], "all_values": True})
    free = sorted(set().union(*(e.free_symbols for e in equations)), key=str)
    unknowns = [sympy.Symbol(args["variable"])] if args.get("variable") else free
    if not unknowns:
        raise wrong("the equation has no unknown")
    real = args.get("domain") == "real"
    raw = sympy.solve(equations, unknowns, dict=True)
    solutions = [s for s in raw if not real or all(v.is_real for v in s.values())]
    rendered = [{str(k): _text(v) for k, v in s.items()} for s in solutions]
    numeric = [{str(k): _numeric(v) for k, v in s.items()} for s in solutions]
    if not rendered:
        text = f"{args['equation'].strip()} has no {'real ' if real else ''}solution."
    else:
        text = f"{args['equation'].strip()}: " + " or ".join(
            ", ".join(f"{k} = {v}" for k, v in s.items()) for s in rendered)
    return ToolOutput(text, {"equation": args["equation"], "unknowns": [str(u) for u in unknowns],
                             "solutions": rendered, "numeric": numeric, "all_values": False})


def _numeric(value: Any) -> str:
    try:
        number = sympy.N(value, 15)
        if number.is_real and number.is_finite:
            return approx(float(number))
        return str(number)
    except (TypeError, ValueError, OverflowError):
        return str(value)


def math_op(args: dict[str, Any]) -> ToolOutput:
    operation = args["operation"]
    expr = expression(args["expression"])
    calculus = operation in ("derivative", "integral", "limit")
    var = _variable(args.get("variable"), expr) if calculus else None
    shown = args["expression"].strip()
    if operation == "simplify":
        result, label = sympy.simplify(expr), f"simplify({shown})"
    elif operation == "expand":
        result, label = sympy.expand(expr), f"expand({shown})"
    elif operation == "factor":
        result, label = sympy.factor(expr), f"factor({shown})"
    elif operation == "derivative":
        order = int(args.get("order", 1))
        result = sympy.diff(expr, var, order)
        label = f"d{'^' + str(order) if order > 1 else ''}/d{var}{'^' + str(order) if order > 1 else ''} ({shown})"
    elif operation == "integral":
        if ("lower" in args) != ("upper" in args):
            raise wrong("a definite integral needs both lower and upper")
        if "lower" in args:
            lower, upper = expression(args["lower"]), expression(args["upper"])
            result = sympy.integrate(expr, (var, lower, upper))
            label = f"integral of {shown} d{var} from {args['lower']} to {args['upper']}"
        else:
            result, label = sympy.integrate(expr, var), f"integral of {shown} d{var}"
    else:
        point = expression(args["point"])
        direction = args.get("direction", "+-")
        result = sympy.limit(expr, var, point, dir=direction)
        label = f"limit of {shown} as {var} -> {args['point']}"
    if isinstance(result, sympy.Integral | sympy.Limit):
        raise failed(f"SymPy found no closed form for the {operation}")
    text_result = _text(result)
    suffix = " + C" if operation == "integral" and "lower" not in args else ""
    data = {"operation": operation, "expression": args["expression"], "variable": str(var) if var else None,
            "result": text_result + suffix, "latex": _text(sympy.latex(result)) + suffix}
    if result.is_number:
        data["numeric"] = _numeric(result)
    return ToolOutput(f"{label} = {text_result}{suffix}", data)
