"""What every tool shares: its output shape, its error, and exact number formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from moe_core.contracts.tools import ToolErrorCode

MAX_DIGITS = 4000  # longest integer a result may show (Python refuses str() of ints past 4300 digits)
MAX_BITS = 100_000  # largest intermediate number (about 30,000 digits)


@dataclass(frozen=True)
class ToolOutput:
    """A tool's answer: `text` is one short human sentence with the exact result, `result` the data."""

    text: str
    result: dict[str, Any]


class ToolError(Exception):
    """A clear, expected failure with one of the contract's error codes."""

    def __init__(self, code: ToolErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ToolErrorCode = code
        self.message = message


def wrong(message: str) -> ToolError:
    return ToolError("wrong_arguments", message)


def failed(message: str) -> ToolError:
    return ToolError("tool_execution_error", message)


def check_size(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise ToolError("result_too_large", "a number grew past 100,000 bits")
    return value


def exact_number(text: str | int | float) -> Fraction:
    """A number argument as an exact fraction: strings and ints exactly, floats by their shortest repr."""
    if isinstance(text, bool):
        raise wrong("expected a number, got a boolean")
    if isinstance(text, float) and not math.isfinite(text):
        raise wrong("numbers must be finite")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise wrong(f"not a number: {str(text)[:40]!r}") from None
    if not value.is_finite() or abs(value.adjusted()) > 1000:
        raise wrong(f"number out of range: {str(text)[:40]!r}")
    return Fraction(value)


def decimal_text(value: Fraction) -> str | None:
    """The exact decimal expansion of a fraction, or None when it does not terminate."""
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return None
    places = max(twos, fives)
    scaled = abs(value.numerator) * (10**places // value.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    if len(digits) > MAX_DIGITS:
        raise ToolError("result_too_large", "the exact result has more than 4000 digits")
    sign = "-" if value < 0 else ""
    if places == 0:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def approx(value: Fraction | float, digits: int = 15) -> str:
    """A decimal approximation with `digits` significant digits (no float overflow for huge fractions)."""
    if isinstance(value, Fraction):
        if value == 0:
            return "0"
        try:
            return _trim(f"{Decimal(value.numerator) / Decimal(value.denominator):.{digits}g}")
        except (InvalidOperation, OverflowError):
            raise ToolError("result_too_large", "the result is too large to show") from None
    if not math.isfinite(value):
        raise failed("the result is not a finite number")
    return _trim(f"{value:.{digits}g}")


def _trim(text: str) -> str:
    if "e" in text or "E" in text:
        mantissa, _, exponent = text.lower().partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent)}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def show(value: Fraction | float) -> str:
    """Exact text when the number has one (integer or terminating decimal), else an approximation."""
    if isinstance(value, Fraction):
        exact = decimal_text(value)
        if exact is not None:
            return exact
    return approx(value)


def number_data(value: Fraction | float) -> dict[str, Any]:
    """The structured form of a numeric result."""
    if isinstance(value, Fraction):
        exact = decimal_text(value)
        data: dict[str, Any] = {"exact": True, "result": exact if exact is not None else approx(value),
                                "fraction": f"{value.numerator}/{value.denominator}" if value.denominator != 1
                                else str(value.numerator)}
        data["decimal"] = exact if exact is not None else approx(value, 30)
        try:
            data["value"] = float(value)
        except OverflowError:
            data["value"] = None
        return data
    return {"exact": False, "result": approx(value), "value": value}


def grouped(text: str) -> str:
    """Thousands separators for an integer part ('2340.5' -> '2,340.5'); leaves other text alone."""
    sign = "-" if text.startswith("-") else ""
    body = text[len(sign):]
    whole, dot, frac = body.partition(".")
    if not whole.isdigit() or len(whole) > MAX_DIGITS:
        return text
    return f"{sign}{int(whole):,}{dot}{frac}"
