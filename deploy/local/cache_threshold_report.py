"""Hit and false-hit rates of the semantic cache per distance threshold, on a labelled set of pairs.

    .venv/bin/python deploy/local/cache_threshold_report.py [tests/data/cache_pairs.yaml] [--misses]
    .venv/bin/python deploy/local/cache_threshold_report.py --router [tests/data/router_set.yaml]

For every pair the second question is looked up against the first one's cache entry, exactly as the
planner does it: cosine distance of the embedded normalised questions, then the deterministic guards
(planner.cache_text.conflict). A paraphrase that hits is right; a near miss that hits is a wrong answer.
The table shows both the distance alone and distance + guards. --misses lists the pairs behind the
numbers at the configured default threshold (MOE_CACHE_HARD_THRESHOLD or the planner's default).
--router measures the semantic router instead: right, wrong and unwanted shortcuts per threshold and margin.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from moe_core.knowledge.embeddings import cosine_distance, get_embedder
from moe_core.knowledge.static_embedding import get_static_embedder
from planner import router
from planner.cache_text import conflict, normalise
from planner.router_prototypes import PROTOTYPES
from planner.settings import PlannerSettings

REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = [0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.25, 0.30, 0.35, 0.40]


def score(path: Path) -> tuple[list[tuple[str, str, float, str | None]], list[tuple[str, str, float, str | None, str]]]:
    data = yaml.safe_load(path.read_text())
    embedder = get_embedder()

    def rows(pairs: list[tuple[str, str]]) -> list[tuple[str, str, float, str | None]]:
        out = []
        for a, b in pairs:
            va, vb = embedder.embed([normalise(a), normalise(b)])
            out.append((a, b, cosine_distance(va, vb), conflict(a, b)))
        return out

    paraphrases = rows([(p[0], p[1]) for p in data["paraphrases"]])
    misses = [(*row, m["kind"]) for row, m in zip(rows([(m["a"], m["b"]) for m in data["near_misses"]]),
                                                   data["near_misses"], strict=True)]
    return paraphrases, misses


def router_report(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    settings = PlannerSettings()
    embedder: Any = get_static_embedder() if settings.router_embedding == "static" else get_embedder()
    labels = [c for c, qs in PROTOTYPES.items() for _ in qs]
    protos = embedder.embed([normalise(q) for qs in PROTOTYPES.values() for q in qs])
    cases = [(q, c) for c, qs in data["routed"].items() for q in qs] + [(q, None) for q in data["planner"]]
    neighbours = []
    for question, _ in cases:
        dist = 1.0 - protos @ embedder.embed([normalise(question)])[0]
        nearest = sorted(zip(labels, dist.tolist(), strict=True), key=lambda x: x[1])[: router.NEIGHBOURS]
        neighbours.append(nearest)
    threshold, margin = settings.router_distances()  # the router's own embedding's
    n_routed = sum(1 for _, c in cases if c)
    n_planner = len(cases) - n_routed
    print(f"{n_routed} single-category questions, {n_planner} that need the planner; "
          f"{settings.router_embedding} embedding, default threshold {threshold}, margin {margin}\n")
    print("threshold margin | right shortcut | WRONG category | planner question short-cut")
    for t in (0.25, 0.30, 0.33, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70):
        for m in (0.05, 0.07, 0.10, 0.15, 0.20):
            routes = [router.decide(n, t, m) for n in neighbours]
            right = sum(1 for r, (_, c) in zip(routes, cases, strict=True) if r and r.clear and c == r.category)
            wrong = sum(1 for r, (_, c) in zip(routes, cases, strict=True) if r and r.clear and c and c != r.category)
            unwanted = sum(1 for r, (_, c) in zip(routes, cases, strict=True) if r and r.clear and c is None)
            mark = "  <- default" if (t, m) == (threshold, margin) else ""
            print(f"  {t:4.2f}     {m:4.2f}  | {rate(right, n_routed)} | {rate(wrong, n_routed)} | "
                  f"{rate(unwanted, n_planner)}{mark}")


def rate(hits: int, total: int) -> str:
    return f"{hits:3d}/{total:<3d} {100 * hits / max(total, 1):5.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="?", help="labelled set (default tests/data/cache_pairs.yaml or router_set)")
    parser.add_argument("--misses", action="store_true", help="list the pairs decided wrongly at the default")
    parser.add_argument("--router", action="store_true", help="measure the semantic router instead")
    args = parser.parse_args(argv)
    if args.router:
        router_report(Path(args.pairs or REPO / "tests" / "data" / "router_set.yaml"))
        return 0
    args.pairs = args.pairs or str(REPO / "tests" / "data" / "cache_pairs.yaml")
    paraphrases, misses = score(Path(args.pairs))
    default = PlannerSettings().cache_hard_threshold
    kinds = Counter(m[4] for m in misses)
    print(f"{len(paraphrases)} paraphrase pairs, {len(misses)} near-miss pairs ({dict(kinds)})")
    print(f"default hard threshold: {default}\n")
    print("threshold | paraphrase hits (guards) | false hits, distance only | false hits with guards")
    for t in sorted({*THRESHOLDS, default}):
        hit = sum(1 for _, _, d, c in paraphrases if d <= t and c is None)
        raw = sum(1 for _, _, d, _c, _k in misses if d <= t)
        guarded = sum(1 for _, _, d, c, _k in misses if d <= t and c is None)
        mark = "  <- default" if t == default else ""
        print(f"  {t:5.2f}   | {rate(hit, len(paraphrases))}          | {rate(raw, len(misses))}          "
              f"| {rate(guarded, len(misses))}{mark}")
    print("\nfalse hits with guards at the default, by kind:")
    for kind in sorted(kinds):
        bad = [m for m in misses if m[4] == kind and m[2] <= default and m[3] is None]
        print(f"  {kind:9s} {rate(len(bad), kinds[kind])}")
    if args.misses:
        print("\nparaphrases missed at the default:")
        for a, b, d, c in paraphrases:
            if not (d <= default and c is None):
                print(f"  {d:.3f} {a!r} / {b!r}: {c or 'distance'}")
        print("\nnear misses that would hit at the default:")
        for a, b, d, c, k in misses:
            if d <= default and c is None:
                print(f"  {d:.3f} [{k}] {a!r} / {b!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
