"""unit_convert: pint with exact fractions (so 100 km/h is exactly 250/9 m/s)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pint

from mcp_service.tools.base import ToolOutput, decimal_text, exact_number, failed, grouped, number_data, show, wrong
from moe_core.contracts.tools import normalise_unit
from moe_core.contracts.unit_kinds import kind, same_kind

# Built once per process (about half a second); the worker processes inherit it preloaded.
UREG: Any = pint.UnitRegistry(non_int_type=Fraction, autoconvert_offset_to_baseunit=True)


def parse_unit(text: str) -> Any:
    name = normalise_unit(text)
    if name is None:
        raise wrong(f"not a unit: {text[:40]!r}")
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
    if not same_kind(source, target, UREG):  # one dimension, two quantities: N*m is no J, Gy no Sv, VA no W
        raise failed(f"cannot convert {args['from_unit']} ({kind(source, UREG) or 'no kind'}) to {args['to_unit']} "
                     f"({kind(target, UREG) or 'no kind'}): the same dimension, a different kind of quantity")
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
