"""unit_convert: pint with exact fractions (so 100 km/h is exactly 250/9 m/s)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import pint

from mcp_service.tools.base import ToolOutput, decimal_text, exact_number, failed, grouped, number_data, show, wrong

# Built once per process (about half a second); the worker processes inherit it preloaded.
UREG: Any = pint.UnitRegistry(non_int_type=Fraction, autoconvert_offset_to_baseunit=True)
UNIT_TEXT = re.compile(r"^[A-Za-z°µμΩ%][A-Za-z0-9°µμΩ_ /*^().·%-]{0,63}$")
ALIASES = {
    "°c": "degC", "ºc": "degC", "celsius": "degC", "degrees celsius": "degC", "c": "degC",
    "°f": "degF", "ºf": "degF", "fahrenheit": "degF", "degrees fahrenheit": "degF", "f": "degF",
    "k": "kelvin", "kelvin": "kelvin", "kph": "km/h", "kmh": "km/h", "km/hr": "km/h", "mph": "mile/hour",
    "kts": "knot", "knots": "knot", "mps": "m/s", "lbs": "lb", "pounds": "lb", "ounces": "oz",
    "miles per hour": "mile/hour", "kilometers per hour": "km/h", "kilometres per hour": "km/h",
    "meters per second": "m/s", "metres per second": "m/s", "liters": "liter", "litres": "liter",
    "kb": "kilobyte", "mb": "megabyte", "gb": "gigabyte", "tb": "terabyte", "kib": "kibibyte",
    "mib": "mebibyte", "gib": "gibibyte", "tib": "tebibyte",
}


def unit_name(text: str) -> str:
    """Normalise common spellings (°C, mph, kph, GB ...) to pint's; refuse text outside the unit alphabet."""
    clean = " ".join(text.strip().split())
    if not UNIT_TEXT.match(clean) or re.search(r"\d{3,}", clean):
        raise wrong(f"not a unit: {text[:40]!r}")
    alias = ALIASES.get(clean.lower())
    if alias:
        return alias
    return clean.replace("^", "**").replace("·", "*").replace(" per ", "/")


def parse_unit(text: str) -> Any:
    name = unit_name(text)
    try:
        return UREG.parse_units(name)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, KeyError, SyntaxError) as exc:
        raise wrong(f"unknown unit {text!r}: {str(exc)[:120]}") from None


def pint_text(unit: Any) -> str:
    """pint's name of a unit (its formatter fails on fractional exponents, so build it by hand then)."""
    try:
        return str(unit)
    except (TypeError, ValueError):
        items = sorted(dict(unit._units).items())
        return " * ".join(name if power == 1 else f"{name} ** {power}" for name, power in items)


def unit_convert(args: dict[str, Any]) -> ToolOutput:
    value = exact_number(args["value"])
    source, target = parse_unit(args["from_unit"]), parse_unit(args["to_unit"])
    try:
        converted = UREG.Quantity(value, source).to(target)
    except pint.errors.DimensionalityError:
        raise failed(f"cannot convert {args['from_unit']} to {args['to_unit']}: different dimensions") from None
    except (pint.errors.PintError, ZeroDivisionError, OverflowError) as exc:
        raise failed(f"conversion failed: {str(exc)[:160]}") from None
    magnitude = converted.magnitude
    result_value = magnitude if isinstance(magnitude, Fraction) else float(magnitude)
    data = {"quantity": args["value"], "from_unit": args["from_unit"], "to_unit": args["to_unit"],
            "from_pint": pint_text(source), "to_pint": pint_text(target), **number_data(result_value)}
    shown = grouped(show(result_value))
    text = f"{grouped(show(value))} {args['from_unit'].strip()} = {shown} {args['to_unit'].strip()}"
    if isinstance(result_value, Fraction) and decimal_text(result_value) is None:
        text += f" (exactly {data['fraction']})"
    return ToolOutput(text, data)
