"""calculate: exact arithmetic on fractions where possible, floats only for irrational functions."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from mcp_service.tools.base import (
    MAX_BITS,
    ToolError,
    ToolOutput,
    check_size,
    decimal_text,
    failed,
    grouped,
    number_data,
    show,
)
from mcp_service.tools.base import wrong as wrong_args
from mcp_service.tools.expr import Parsed, literal_text, parse

Num = Fraction | float
MAX_FACTORIAL = 1000
MAX_COMB = 10_000
MAX_EXPONENT = 10_000
CONSTANTS: dict[str, Num] = {"pi": math.pi, "e": math.e, "E": math.e, "tau": math.tau}


def calculate(args: dict[str, Any]) -> ToolOutput:
    expression = args["expression"]
    parsed = parse(expression)
    value = Evaluator(parsed).eval(parsed.tree)
    data = number_data(value)
    shown = show(value)
    text = f"{_display(expression)} = {grouped(shown)}"
    if isinstance(value, Fraction) and decimal_text(value) is None:
        text += f" (exactly {data['fraction']})"
    return ToolOutput(text, {"expression": expression, **data})


def _display(expression: str) -> str:
    """The expression as the user wrote it, with thousands separators in long integers."""
    return re.sub(r"(?<![\w.,])\d{4,}(?![\d,])", lambda m: grouped(m.group(0)), expression.strip())


class Evaluator:
    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed

    def eval(self, node: ast.expr) -> Num:
        if isinstance(node, ast.Constant):
            return Fraction(literal_text(self.parsed, node))
        if isinstance(node, ast.Name):
            if node.id not in CONSTANTS:
                raise wrong_args(f"{node.id!r} is not a number")
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return self._binary(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, [self.eval(a) for a in node.args])
        raise wrong_args(f"{type(node).__name__} is not allowed")

    def _binary(self, op: ast.operator, a: Num, b: Num) -> Num:
        try:
            if isinstance(op, ast.Pow):
                return power(a, b)
            result: Num
            if isinstance(op, ast.Add):
                result = a + b
            elif isinstance(op, ast.Sub):
                result = a - b
            elif isinstance(op, ast.Mult):
                result = a * b
            elif isinstance(op, ast.Div):
                result = a / b
            elif isinstance(op, ast.FloorDiv):
                quotient = a // b
                result = Fraction(quotient) if isinstance(quotient, int) else quotient
            else:
                result = a % b
        except ZeroDivisionError:
            raise failed("division by zero") from None
        except OverflowError:
            raise ToolError("result_too_large", "the result is too large for a float") from None
        return _checked(result)

    def _call(self, name: str, args: list[Num]) -> Num:
        func = FUNCTIONS.get(name)
        if func is None:
            raise wrong_args(f"unknown function {name}")
        try:
            return _checked(func(*args))
        except TypeError:
            raise wrong_args(f"{name}() got {len(args)} argument(s) it cannot take") from None
        except ZeroDivisionError:
            raise failed(f"{name}(): division by zero") from None
        except ValueError as exc:
            raise failed(f"{name}(): {exc}") from None
        except OverflowError:
            raise ToolError("result_too_large", f"{name}(): the result is too large") from None


def _checked(value: Num) -> Num:
    if isinstance(value, Fraction):
        return check_size(value)
    if isinstance(value, int):
        return check_size(Fraction(value))
    if not math.isfinite(value):
        raise ToolError("result_too_large", "the result is not a finite number")
    return value


def power(base: Num, exponent: Num) -> Num:
    if isinstance(exponent, Fraction) and exponent.denominator == 1 and isinstance(base, Fraction):
        n = exponent.numerator
        if abs(n) > MAX_EXPONENT:
            raise ToolError("result_too_large", f"integer exponents are limited to ±{MAX_EXPONENT}")
        bits = max(base.numerator.bit_length(), base.denominator.bit_length())
        if bits * abs(n) > MAX_BITS:
            raise ToolError("result_too_large", "the power would exceed 100,000 bits")
        return base**n
    whole = exponent.denominator == 1 if isinstance(exponent, Fraction) else float(exponent).is_integer()
    if base < 0 and not whole:
        raise failed("a negative number to a fractional power is not a real number")
    try:
        return math.pow(float(base), float(exponent))
    except OverflowError:
        raise ToolError("result_too_large", "the power is too large for a float") from None


def _integer(value: Num, name: str) -> int:
    if isinstance(value, Fraction) and value.denominator == 1:
        return value.numerator
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise failed(f"{name}() needs whole numbers")


def _sqrt(x: Num) -> Num:
    if isinstance(x, Fraction) and x >= 0:
        num, den = math.isqrt(x.numerator), math.isqrt(x.denominator)
        if num * num == x.numerator and den * den == x.denominator:
            return Fraction(num, den)
    if x < 0:
        raise ValueError("square root of a negative number")
    return math.sqrt(x)


def _cbrt(x: Num) -> Num:
    if isinstance(x, Fraction):
        sign = -1 if x < 0 else 1
        num, den = abs(x.numerator), x.denominator
        rn, rd = iroot(num, 3), iroot(den, 3)
        if rn**3 == num and rd**3 == den:
            return Fraction(sign * rn, rd)
    return math.copysign(abs(float(x)) ** (1 / 3), float(x))


def iroot(n: int, k: int) -> int:
    """The integer k-th root of n >= 0 (Newton's method on integers, no float overflow)."""
    if n < 2:
        return n
    x = 1 << -(-n.bit_length() // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _log(x: Num, base: Num | None = None) -> Num:
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ValueError("logarithm of a non-positive number or base 1")
    if base is None:
        return Fraction(0) if x == 1 else math.log(x)
    exact = _exact_log(x, base)
    return exact if exact is not None else math.log(x) / math.log(base)


def _exact_log(x: Num, base: Num) -> Fraction | None:
    """log_b(x) when x is an integer power of b (so log(1000, 10) is exactly 3)."""
    if not (isinstance(x, Fraction) and isinstance(base, Fraction)) or base <= 0 or base == 1:
        return None
    estimate = round(math.log(x) / math.log(base))
    if abs(estimate) <= MAX_EXPONENT and base**estimate == x:
        return Fraction(estimate)
    return None


def _round(x: Num, places: Num = Fraction(0)) -> Num:
    """Round half away from zero (2.5 -> 3), exactly for fractions."""
    digits = _integer(places, "round")
    if abs(digits) > 1000:
        raise ValueError("round() places are limited to ±1000")
    exact = Fraction(x) if isinstance(x, float) else x
    scale = Fraction(10) ** digits
    shifted = abs(exact) * scale
    rounded = math.floor(shifted + Fraction(1, 2))
    return Fraction(rounded if exact >= 0 else -rounded) / scale


def _bounded_int(limit: int, name: str) -> Callable[..., list[int]]:
    def check(*values: Num) -> list[int]:
        ints = [_integer(v, name) for v in values]
        if any(abs(v) > limit for v in ints):
            raise ToolError("result_too_large", f"{name}() arguments are limited to {limit}")
        return ints

    return check


def _float(func: Callable[..., float]) -> Callable[..., float]:
    return lambda *xs: func(*(float(x) for x in xs))


_FACT = _bounded_int(MAX_FACTORIAL, "factorial")
_COMB = _bounded_int(MAX_COMB, "comb")

FUNCTIONS: dict[str, Callable[..., Num]] = {
    "sqrt": _sqrt, "cbrt": _cbrt, "exp": _float(math.exp), "ln": lambda x: _log(x), "log": _log,
    "log10": lambda x: _log(x, Fraction(10)), "log2": lambda x: _log(x, Fraction(2)),
    "sin": _float(math.sin), "cos": _float(math.cos), "tan": _float(math.tan), "asin": _float(math.asin),
    "acos": _float(math.acos), "atan": _float(math.atan), "atan2": _float(math.atan2), "sinh": _float(math.sinh),
    "cosh": _float(math.cosh), "tanh": _float(math.tanh), "abs": abs, "round": _round,
    "floor": lambda x: Fraction(math.floor(x)), "ceil": lambda x: Fraction(math.ceil(x)),
    "factorial": lambda x: Fraction(math.factorial(*_FACT(x))) if x >= 0 else _negative("factorial"),
    "gcd": lambda *xs: Fraction(math.gcd(*(_integer(x, "gcd") for x in xs))),
    "lcm": lambda *xs: Fraction(math.lcm(*_bounded_int(10**100, "lcm")(*xs))),
    "min": min, "max": max, "hypot": _float(math.hypot), "degrees": _float(math.degrees),
    "radians": _float(math.radians),
    "comb": lambda n, k: Fraction(math.comb(*_COMB(n, k))),
    "perm": lambda n, k: Fraction(math.perm(*_COMB(n, k))),
}


def _negative(name: str) -> Num:
    raise ValueError(f"{name}() of a negative number")
