"""The calibration's part of the precision report (evaluate.py): the intent path's thresholds as calibrate.py
chose them (planner/preflight/calibration.yaml) and, on the held-out sets, the false-exact rate per kind and
language and per family of the intent path, each with its one-sided 95% Clopper-Pearson upper bound."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import yaml

from planner.preflight.intent import CALIBRATION


class Graded(Protocol):
    item: dict[str, Any]
    tool: str | None
    verdict: str
    path: str


def upper_bound(wrong: int, n: int, alpha: float = 0.05) -> float:
    """The one-sided (1 - alpha) Clopper-Pearson upper bound of a rate seen as wrong of n (1.0 for n = 0)."""
    if n == 0 or wrong >= n:
        return 1.0
    if wrong == 0:
        return 1 - alpha ** (1 / n)  # the rule of three's exact form: about 3/n
    low, high = wrong / n, 1.0
    for _ in range(60):  # the p at which seeing at most `wrong` has probability alpha (bisection)
        mid = (low + high) / 2
        low, high = (mid, high) if _cdf(wrong, n, mid) > alpha else (low, mid)
    return high


def _cdf(k: int, n: int, p: float) -> float:
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) +
                        (n - i) * math.log1p(-p)) for i in range(k + 1))


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def false_exact_rows(groups: dict[Any, Sequence[Graded]], names: Callable[[Any], list[str]]) -> list[str]:
    """One row per group: questions, exact answers, wrong ones, their rate and its bound: among the exact answers,
    or, for a group of questions no tool should answer (distractors, must-refuse units), among the questions."""
    rows = []
    for key, group in sorted(groups.items()):
        answered = [g for g in group if g.tool is not None]
        wrong = sum(g.verdict == "wrong" for g in answered)
        basis = len(group) if not any(g.item.get("tool") for g in group) else len(answered)
        rate, bound = (_pct(wrong / basis), _pct(upper_bound(wrong, basis))) if basis else ("-", "-")
        of = " of questions" if basis and basis == len(group) and not any(g.item.get("tool") for g in group) else ""
        rows.append(f"| {' | '.join(names(key))} | {len(group)} | {len(answered)} | {wrong} | {rate}{of} | {bound} |")
    return rows


def section(results: dict[str, Sequence[Graded]]) -> list[str]:
    data = yaml.safe_load(CALIBRATION.read_text(encoding="utf-8"))
    held = [g for name in data["held_out_sets"] for g in results[name]]
    lines = ["", "## Calibration of the router's confidence (the intent path's thresholds)", "",
             "Computed by tests/data/precision/calibrate.py (run by `make precision` before this report) into",
             "services/planner/planner/preflight/calibration.yaml, which the planner reads; no threshold is typed in.",
             f"Method: {data['method']}",
             f"Calibration sets: {', '.join(data['calibration_sets'])}.",
             f"Held-out sets (no part in any choice): {', '.join(data['held_out_sets'])}.",
             "A grammar answers only when every word is bound and the reading is unambiguous: it has no confidence",
             "to calibrate; its false-exact rate is measured below with the intent path's.", "",
             "| family | least score | least lead | calibration: right exact answers | wrong | 95% upper bound |",
             "|---|---|---|---|---|---|"]
    for family, t in data["thresholds"].items():
        lines.append(f"| {family} | {t['min_score']} | {t['min_lead']} | {t['calibration_answered']} | "
                     f"{t['calibration_wrong']} | {_pct(t['false_exact_upper_95'])} |")
    header = ["| exact answers | wrong | false-exact rate (wrong / exact answers) | 95% upper bound |",
              "|---|---|---|---|"]
    by_set: dict[str, list[Graded]] = {name: list(results[name]) for name in data["held_out_sets"]}
    by_path: dict[str, list[Graded]] = defaultdict(list)
    by_kind: dict[tuple[str, str, str], list[Graded]] = defaultdict(list)
    for name in data["held_out_sets"]:
        for g in results[name]:
            by_kind[(name, str(g.item.get("category")), str(g.item.get("language", "en")))].append(g)
    for g in held:
        if g.tool is not None:
            by_path[g.path or "grammar"].append(g)
    lines += ["", "### Held-out: the false-exact rate per set", "", "| set | questions " + header[0],
              "|---|---" + header[1], *false_exact_rows(by_set, lambda k: [k]),
              "", "### Held-out: per kind and language", "", "| set | kind | language | questions " + header[0],
              "|---|---|---|---" + header[1], *false_exact_rows(by_kind, lambda k: list(k)),
              "", "### Held-out: per path (a grammar, or the intent path's family)", "",
              "| path | questions " + header[0], "|---|---" + header[1], *false_exact_rows(by_path, lambda k: [k])]
    return lines
