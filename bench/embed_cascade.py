"""Would a cascade (the static embedding first, MiniLM only where a decision could change) cut the planner's
embedding per request while keeping today's decisions? (issue 52, item 2)

    python -m bench.embed_cascade [--questions 64] [--out FILE]

The static model is distilled from the packaged MiniLM as `bench.static_embed` does (nothing downloaded). The
cascade's rule for the semantic cache: embed the question statically; if no entry of its scope is within the
static distance LOOSE, the lookup is a miss (no hit, no few-shot example) without MiniLM; else MiniLM decides as
today. LOOSE is chosen on the even labelled pairs (tests/data/cache_pairs.yaml) as the largest static distance of a
pair whose MiniLM distance is within the soft threshold (a hit or a few-shot example: the decisions a skip could
change), and the decisions are counted on the odd pairs (the held-apart half): how many differ from MiniLM's, and
how many lookups skipped MiniLM. Then how often the skip would happen where it matters for CPU: the bench's own
question streams (each full or trivial question looked up against the earlier ones of its stream, as the cache
holds them in a run) and the router set's questions looked up against the other categories' questions (unrelated
questions). The router's decisions on its set with the static vectors alone are counted beside.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.config import REPO
from bench.static_embed import Static, distil, token_vectors


def _embed_all(embed: Any, texts: list[str]) -> np.ndarray:
    from planner.cache_text import normalise

    return np.vstack([embed([normalise(t)]) for t in texts])


def _pair_distances(embed: Any, pairs: list[tuple[str, str]]) -> np.ndarray:
    a, b = _embed_all(embed, [p[0] for p in pairs]), _embed_all(embed, [p[1] for p in pairs])
    return np.asarray(1.0 - (a * b).sum(axis=1))


def _decision(pair: tuple[str, str], distance: float, hard: float, soft: float) -> tuple[bool, int]:
    from planner.semantic_cache import Candidate, decide

    lookup = decide([Candidate(key="k", question=pair[0], answer="cached", distance=distance)], pair[1], hard, soft,
                    2)
    return lookup.hit is not None, len(lookup.few_shot)


def cache_pairs(static: Static, minilm: Any, hard: float, soft: float) -> dict[str, Any]:
    data = yaml.safe_load((REPO / "tests/data/cache_pairs.yaml").read_text())
    pairs = [(p[0], p[1]) for p in data["paraphrases"]] + [(m["a"], m["b"]) for m in data["near_misses"]]
    kinds = ["paraphrase"] * len(data["paraphrases"]) + ["near_miss"] * len(data["near_misses"])
    ds, dm = _pair_distances(static.embed, pairs), _pair_distances(minilm.embed, pairs)
    even = [i for i in range(len(pairs)) if i % 2 == 0]
    loose = float(max(ds[i] for i in even if dm[i] <= soft)) + 1e-6
    result: dict[str, Any] = {"loose": round(loose, 4)}
    for name, rows in (("all", range(len(pairs))), ("held_apart", [i for i in range(len(pairs)) if i % 2])):
        today = [_decision(pairs[i], float(dm[i]), hard, soft) for i in rows]
        cascade = [_decision(pairs[i], float(dm[i]), hard, soft) if ds[i] <= loose else (False, 0) for i in rows]
        false_hits = [c[0] and kinds[i] == "near_miss" for i, c in zip(rows, cascade, strict=True)]
        today_false = [t[0] and kinds[i] == "near_miss" for i, t in zip(rows, today, strict=True)]
        differ = sum(a != b for a, b in zip(today, cascade, strict=True))
        result[name] = {"pairs": len(today), "decisions_differ": differ,
                        "hits_today": sum(t[0] for t in today), "hits_cascade": sum(c[0] for c in cascade),
                        "false_hits_today": sum(today_false), "false_hits_cascade": sum(false_hits),
                        "minilm_skipped": sum(1 for i in rows if ds[i] > loose)}
    return result


def stream_skips(static: Static, texts: list[str], loose: float) -> str:
    """Of each question looked up against the earlier ones of its stream: how many find none within `loose`."""
    vectors = _embed_all(static.embed, texts)
    skipped = sum(1 for i in range(1, len(texts)) if float((1.0 - vectors[:i] @ vectors[i]).min()) > loose)
    return f"{skipped}/{len(texts) - 1}"


def unrelated_skips(static: Static, routed: dict[str, list[str]], loose: float) -> str:
    """Each router-set question against every question of the other categories."""
    texts = [(c, q) for c, qs in routed.items() for q in qs]
    vectors = _embed_all(static.embed, [q for _, q in texts])
    skipped = 0
    for i, (category, _) in enumerate(texts):
        others = [j for j, (c, _) in enumerate(texts) if c != category]
        skipped += float((1.0 - vectors[others] @ vectors[i]).min()) > loose
    return f"{skipped}/{len(texts)}"


def router_with(embed: Any, threshold: float, margin: float) -> list[Any]:
    from planner import router
    from planner.router_prototypes import PROTOTYPES

    routes = yaml.safe_load((REPO / "tests/data/router_set.yaml").read_text())
    labels = [c for c, qs in PROTOTYPES.items() for _ in qs]
    protos = _embed_all(embed, [q for qs in PROTOTYPES.values() for q in qs])
    decided = []
    for question in [q for qs in routes["routed"].values() for q in qs] + list(routes["planner"]):
        dist = 1.0 - protos @ _embed_all(embed, [question])[0]
        nearest = sorted(zip(labels, dist.tolist(), strict=True), key=lambda x: x[1])[: router.NEIGHBOURS]
        route = router.decide(nearest, threshold, margin)
        decided.append(route and (route.category, route.clear))
    return decided


def main(argv: list[str] | None = None) -> None:
    from bench.scenarios import full_question, trivial_question
    from moe_core.knowledge.embeddings import MiniLMEmbedder
    from planner.settings import PlannerSettings

    parser = argparse.ArgumentParser(prog="python -m bench.embed_cascade", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.process_time()
    tokenizer, vectors = token_vectors()
    static = Static(tokenizer, distil(vectors, 256))
    s = PlannerSettings()
    minilm = MiniLMEmbedder(cache_size=0)
    result: dict[str, Any] = {"distil_cpu_s": round(time.process_time() - started, 1),
                              "thresholds": {"hard": s.cache_hard_threshold, "soft": s.cache_soft_threshold}}
    result["cache_pairs"] = cache_pairs(static, minilm, s.cache_hard_threshold, s.cache_soft_threshold)
    loose = result["cache_pairs"]["loose"]
    routed = yaml.safe_load((REPO / "tests/data/router_set.yaml").read_text())["routed"]
    result["minilm_skipped_by_the_cascade"] = {
        "bench_full_stream": stream_skips(static, [full_question(i) for i in range(args.questions)], loose),
        "bench_trivial_stream": stream_skips(static, [trivial_question(i) for i in range(args.questions)], loose),
        "router_set_against_other_categories": unrelated_skips(static, routed, loose)}
    today = router_with(minilm.embed, s.router_minilm_threshold, s.router_minilm_margin)
    alone = router_with(static.embed, s.router_threshold, s.router_margin)  # at its own distances
    result["router_static_alone"] = {"questions": len(today),
                                     "decisions_differ": sum(a != b for a, b in zip(today, alone, strict=True))}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
