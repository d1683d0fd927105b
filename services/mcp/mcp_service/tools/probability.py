"""exact_probability: combinatorics and probabilities as exact fractions."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from mcp_service.tools.base import MAX_BITS, ToolError, ToolOutput, approx, check_size, failed, number_data, wrong

MAX_BINOMIAL_N = 2000


def probability(value: Any) -> Fraction:
    if isinstance(value, bool):
        raise wrong("a probability is a number, not a boolean")
    text = str(value).strip()
    try:
        p = Fraction(text.replace(" ", "")) if isinstance(value, str) else Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise wrong(f"not a probability: {text[:40]!r}") from None
    if not 0 <= p <= 1:
        raise wrong(f"a probability must be between 0 and 1, got {text[:40]}")
    return check_size(p)


def _describe(value: Fraction) -> str:
    if value.denominator == 1:
        return f"{value.numerator:,}"
    return f"{value.numerator}/{value.denominator} ≈ {approx(value, 6)}"


def exact_probability(args: dict[str, Any]) -> ToolOutput:
    op = args["operation"]
    if op in ("combinations", "permutations"):
        n, k = args["n"], args["k"]
        _check_magnitude(n, k, op == "combinations")
        count = math.comb(n, k) if op == "combinations" else math.perm(n, k)
        value = check_size(Fraction(count))
        label = f"C({n}, {k})" if op == "combinations" else f"P({n}, {k})"
    elif op == "binomial":
        value, label = _binomial(args)
    elif op == "dice_sum":
        value, label = _dice(args["dice"], args["sides"], args["target"])
    else:
        probabilities = [probability(p) for p in args["probabilities"]]
        value = Fraction(1)
        for p in probabilities:
            value *= p if op == "all_of" else 1 - p
        value = value if op == "all_of" else 1 - value
        value = check_size(value)
        label = f"P({'all' if op == 'all_of' else 'at least one'} of {len(probabilities)} independent events)"
    return ToolOutput(f"{label} = {_describe(value)}", {"operation": op, **number_data(value)})


def _check_magnitude(n: int, k: int, choose: bool) -> None:
    """Refuse before computing a count past 100,000 bits (the size bound of every exact result)."""
    if k > n:
        return
    log = math.lgamma(n + 1) - math.lgamma(n - k + 1) - (math.lgamma(k + 1) if choose else 0)
    if log / math.log(2) > MAX_BITS:
        raise ToolError("result_too_large", "the count would exceed 100,000 bits")


def _binomial(args: dict[str, Any]) -> tuple[Fraction, str]:
    n, k, mode = args["n"], args["k"], args.get("mode", "exactly")
    if n > MAX_BINOMIAL_N:
        raise failed(f"binomial n is limited to {MAX_BINOMIAL_N}")
    if k > n:
        raise wrong("k cannot exceed n")
    p = probability(args["p"])
    ks = {"exactly": range(k, k + 1), "at_least": range(k, n + 1), "at_most": range(0, k + 1)}[mode]
    value = sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in ks), Fraction(0))
    return check_size(value), f"P({mode.replace('_', ' ')} {k} of {n}, p={p})"


def _dice(dice: int, sides: int, target: int) -> tuple[Fraction, str]:
    """Ways to roll `target` with `dice` fair dice of `sides` faces, by dynamic programming."""
    ways = [1]
    for _ in range(dice):
        prefix = [0]
        for count in ways:
            prefix.append(prefix[-1] + count)
        size = len(ways) + sides
        # nxt[t] = ways[t-sides] + ... + ways[t-1]
        ways = [prefix[min(t, len(ways))] - prefix[max(t - sides, 0)] if t > 0 else 0 for t in range(size)]
    hits = ways[target] if target < len(ways) else 0
    return Fraction(hits, sides**dice), f"P(sum of {dice}d{sides} = {target})"
