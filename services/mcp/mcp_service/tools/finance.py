"""decimal_finance: money maths in Decimal with explicit rounding modes (never binary floats)."""

from __future__ import annotations

import decimal
from decimal import Decimal, localcontext
from typing import Any

from mcp_service.tools.base import ToolOutput, failed, wrong

ROUNDING = {"half_up": decimal.ROUND_HALF_UP, "half_even": decimal.ROUND_HALF_EVEN,
            "half_down": decimal.ROUND_HALF_DOWN, "up": decimal.ROUND_UP, "down": decimal.ROUND_DOWN,
            "ceiling": decimal.ROUND_CEILING, "floor": decimal.ROUND_FLOOR, "05up": decimal.ROUND_05UP}
PRECISION = 60
HUNDRED = Decimal(100)


def dec(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise wrong("expected a number, got a boolean")
    try:
        number = Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise wrong(f"not a number: {str(value)[:40]!r}") from None
    if not number.is_finite() or abs(number.adjusted()) > 100:
        raise wrong(f"number out of range: {str(value)[:40]!r}")
    return number


def decimal_finance(args: dict[str, Any]) -> ToolOutput:
    places = args.get("places", 2)
    mode = args.get("rounding", "half_up")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        ctx.traps[decimal.Overflow] = True
        try:
            raw, label, extra = _compute(args)
            rounded = raw.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING[mode])
        except decimal.DivisionByZero:
            raise failed("division by zero") from None
        except (decimal.InvalidOperation, decimal.Overflow):
            raise failed("the result is out of the representable range") from None
    result = {"operation": args["operation"], "result": str(rounded), "unrounded": _plain(raw), "places": places,
              "rounding": mode, **extra}
    text = f"{label} = {rounded:,} (rounded {mode.replace('_', ' ')} to {places} places)"
    if "interest" in extra:  # the interest itself, as people who ask for "the interest on" want it
        interest = Decimal(extra["interest"]).quantize(Decimal(1).scaleb(-places), rounding=ROUNDING[mode])
        text += f"; the interest is {interest:,}"
    return ToolOutput(text + ".", result)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if len(text) <= 200 else str(value)


def _compute(args: dict[str, Any]) -> tuple[Decimal, str, dict[str, Any]]:
    op = args["operation"]
    if op == "round":
        value = dec(args["value"])
        return value, f"round({value})", {}
    if op == "sum":
        values = [dec(v) for v in args["values"]]
        return sum(values, Decimal(0)), f"the sum of {len(values)} values", {}
    if op == "percent_of":
        value, percent = dec(args["value"]), dec(args["percent"])
        return value * percent / HUNDRED, f"{percent}% of {value}", {}
    if op == "percent_change":
        old, new = dec(args["from_value"]), dec(args["to_value"])
        if old == 0:
            raise failed("a percent change from zero is undefined")
        return (new - old) / abs(old) * HUNDRED, f"the change from {old} to {new} in percent", {}
    principal, percent = dec(args["principal"]), dec(args["rate_percent"])
    rate = percent / HUNDRED
    if op == "simple_interest":
        years = args["years"]
        interest = principal * rate * years
        return principal + interest, f"{principal} at {percent}% simple interest for {years} years", {
            "interest": _plain(interest)}
    if op == "compound_interest":
        years, periods = args["years"], args.get("periods_per_year", 1)
        total = principal * (1 + rate / periods) ** (periods * years)
        return total, f"{principal} at {percent}% compounded {periods}x a year for {years} years", {
            "interest": _plain(total - principal)}
    months = args["months"]
    monthly = rate / 12
    payment = principal / months if monthly == 0 else principal * monthly / (1 - (1 + monthly) ** -months)
    return payment, f"the monthly payment on {principal} at {percent}% over {months} months", {
        "total_paid": _plain(payment * months)}
