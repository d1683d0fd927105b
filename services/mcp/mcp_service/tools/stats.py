"""statistics_calc: descriptive statistics, exact (fractions) except for square roots."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction
from typing import Any

from mcp_service.tools.base import ToolOutput, exact_number, grouped, show


def _root(value: Fraction) -> Fraction | float:
    num, den = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if num * num == value.numerator and den * den == value.denominator:
        return Fraction(num, den)
    return math.sqrt(value)


def statistics_calc(args: dict[str, Any]) -> ToolOutput:
    values = [exact_number(v) for v in args["values"]]
    n = len(values)
    mean = sum(values, Fraction(0)) / n
    stats: dict[str, Fraction | float] = {"sum": sum(values, Fraction(0)), "mean": mean,
                                          "median": statistics.median(values), "min": min(values),
                                          "max": max(values), "range": max(values) - min(values)}
    population = sum(((v - mean) ** 2 for v in values), Fraction(0)) / n
    stats["population_variance"] = population
    stats["population_stdev"] = _root(population)
    if n > 1:
        sample = population * n / (n - 1)
        stats["sample_variance"] = sample
        stats["sample_stdev"] = _root(sample)
        q1, _median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        stats.update(q1=q1, q3=q3, iqr=q3 - q1)
    modes = statistics.multimode(values)
    result: dict[str, Any] = {"count": n, **{k: show(v) for k, v in stats.items()},
                              "modes": [show(m) for m in modes] if len(modes) < n or n == 1 else []}
    parts = [f"sum {grouped(result['sum'])}", f"mean {grouped(result['mean'])}", f"median {grouped(result['median'])}"]
    if result["modes"]:
        parts.append(f"mode {', '.join(result['modes'])}")
    if "sample_stdev" in result:
        parts += [f"sample variance {result['sample_variance']}", f"sample standard deviation {result['sample_stdev']}"]
    parts += [f"population variance {result['population_variance']}",
              f"population standard deviation {result['population_stdev']}"]
    text = (f"For {n} value{'s' if n != 1 else ''}: " + ", ".join(parts)
            + f"; min {result['min']}, max {result['max']}, range {result['range']}.")
    return ToolOutput(text, result)
