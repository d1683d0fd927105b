"""The semantic router on the static embedding against MiniLM, on its labelled set (issue 52):

    python -m bench.router_static [--out FILE]

MiniLM at its settings (MOE_ROUTER_MINILM_THRESHOLD/MARGIN) and the static embedding at the threshold and margin that
`planner.router_eval.choose` picks from the even half of tests/data/router_set.yaml, both scored on the odd half
(held apart) and on all items; the reverse fold (chosen on odd, held against even) beside it as a check of how much
the choice depends on the half. Per item: category, distance, lead, clear, for both models. Both use today's
prototypes (planner.router_prototypes). Nothing is written unless `--out`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.config import REPO
from moe_core.knowledge.embeddings import get_embedder
from moe_core.knowledge.static_embedding import get_static_embedder
from planner.router_eval import Space, choose, halves, load_set
from planner.router_prototypes import PROTOTYPES
from planner.settings import PlannerSettings

SET = REPO / "tests" / "data" / "router_set.yaml"


def run() -> dict[str, Any]:
    settings = PlannerSettings()
    cases = load_set(SET)
    even, odd = halves(cases)
    static = Space(get_static_embedder().embed, PROTOTYPES, cases)
    minilm = Space(get_embedder().embed, PROTOTYPES, cases)
    mt, mm = settings.router_minilm_threshold, settings.router_minilm_margin
    out: dict[str, Any] = {"items": len(cases), "minilm": {"threshold": mt, "margin": mm}, "static": {}}
    for name, part in (("all", cases), ("even", even), ("odd", odd)):
        out["minilm"][name] = minilm.score(part, mt, mm).as_dict()
    for fold, tune, held in (("even->odd", even, odd), ("odd->even", odd, even)):
        threshold, margin, tuned = choose(static, tune)
        out["static"][fold] = {"threshold": threshold, "margin": margin, "tuned": tuned.as_dict(),
                               "held": static.score(held, threshold, margin).as_dict(),
                               "all": static.score(cases, threshold, margin).as_dict()}
    st, sm = settings.router_threshold, settings.router_margin
    out["static"]["settings"] = {"threshold": st, "margin": sm, "all": static.score(cases, st, sm).as_dict(),
                                 "odd": static.score(odd, st, sm).as_dict()}
    out["per_item"] = [{"question": c.question, "expected": c.expected, "half": c.index % 2,
                        "minilm": _route(minilm, c, mt, mm), "static": _route(static, c, st, sm)} for c in cases]
    return out


def _route(space: Space, case: Any, threshold: float, margin: float) -> str:
    route = space.route(case, threshold, margin)
    if route is None:
        return "-"
    return f"{route.category} {route.distance:.2f} {route.margin:.2f} {'clear' if route.clear else 'planner'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run()
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(json.dumps({k: v for k, v in result.items() if k != "per_item"}, indent=1))


if __name__ == "__main__":
    main()
