"""Could a static embedding (model2vec's method) replace the planner's MiniLM? Distilled here from the packaged model
itself, at build time, with nothing downloaded, and measured against it (issue 52, item 2):

    python -m bench.static_embed [--out FILE]

model2vec's distillation without its dependencies (it needs torch and transformers; the method is small): every
token of the packaged WordPiece vocabulary goes through the packaged MiniLM alone (`[CLS] token [SEP]`, mean-pooled
as the embedder pools), the vectors are reduced by PCA to `--dims` and weighted by SIF on the token's rank (the
vocabulary's order standing for its frequency, as model2vec assumes). A question's static vector is then the mean of
its tokens' vectors: one table lookup, no network.

The shipped table is moe_core.knowledge.static_embedding's (the same method; `Static`/`token_vectors` here are
the first measurement's, kept for bench.embed_cascade). Reported: CPU per question (process time; MiniLM's for the
same questions beside it), and on the labelled cache pairs (tests/data/cache_pairs.yaml: paraphrases, where a hit is
right, and near misses, where a hit is a wrong answer) the planner's own decision (`planner.semantic_cache.decide`,
its guards included) and how many near misses the distance alone lets through (the guards aside, by kind), for
MiniLM at its thresholds and the static model at its own (PlannerSettings), on all pairs and on the held-apart (odd)
half; and the static thresholds `choose` picks from the even half alone (what the settings' defaults are).
Nothing is written unless `--out`.
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

SIF = 1e-4  # model2vec's default sif_coefficient
BATCH = 512


def token_vectors() -> tuple[Any, np.ndarray]:
    """(tokenizer, one mean-pooled MiniLM vector per vocabulary id) from the packaged files."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from moe_core.knowledge.embeddings import model_files

    model, tokenizer_file = model_files()
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    size = tokenizer.get_vocab_size()
    out = np.zeros((size, 384), dtype=np.float32)
    for start in range(0, size, BATCH):
        ids = np.array([[cls, i, sep] for i in range(start, min(start + BATCH, size))], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        out[start:start + len(ids)] = session.run(None, feeds)[0].mean(axis=1)
    return tokenizer, out


def distil(vectors: np.ndarray, dims: int) -> np.ndarray:
    """PCA to `dims`, then SIF weights on the token's rank (model2vec's post-processing)."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dims].T
    ranks = 1.0 / np.arange(2, len(reduced) + 2)
    weights = SIF / (SIF + ranks / ranks.sum())
    return (reduced * weights[:, None]).astype(np.float32)


class Static:
    def __init__(self, tokenizer: Any, table: np.ndarray) -> None:
        self.tokenizer, self.table = tokenizer, table
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.special = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")}

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = []
        for encoding in self.tokenizer.encode_batch(texts):
            ids = [i for i in encoding.ids if i not in self.special] or [0]
            vector = self.table[ids].mean(axis=0)
            rows.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
        return np.array(rows, dtype=np.float32)


def _distances(embed: Any, pairs: list[tuple[str, str]]) -> list[float]:
    from planner.cache_text import normalise

    vectors = embed([normalise(q) for pair in pairs for q in pair])
    return [float(1.0 - vectors[2 * i] @ vectors[2 * i + 1]) for i in range(len(pairs))]


def _hits(pairs: list[tuple[str, str]], distances: list[float], hard: float, soft: float) -> list[bool]:
    from planner.semantic_cache import Candidate, decide

    return [decide([Candidate(key="k", question=a, answer="cached", distance=d)], b, hard, soft, 2).hit is not None
            for (a, b), d in zip(pairs, distances, strict=True)]


def _rates(paraphrases: list[Any], misses: list[Any], dp: list[float], dm: list[float], hard: float,
           soft: float) -> dict[str, Any]:
    right, wrong = _hits(paraphrases, dp, hard, soft), _hits(misses, dm, hard, soft)
    return {"hard": round(hard, 4), "soft": round(soft, 4), "paraphrase_hits": f"{sum(right)}/{len(right)}",
            "false_hits": f"{sum(wrong)}/{len(wrong)}",  # the planner's decision, its lexical guards included
            "near_misses_within_hard": f"{sum(d <= hard for d in dm)}/{len(dm)}"}  # by the distance alone


def _cpu_ms(embed: Any, questions: list[str], rounds: int = 5) -> float:
    started = time.process_time()
    for _ in range(rounds):
        for q in questions:
            embed([q])
    return round((time.process_time() - started) * 1000 / (rounds * len(questions)), 3)


def _matched(distances: list[float], target: int) -> float:
    """The smallest threshold within which at least `target` of `distances` lie."""
    ordered = sorted(distances)
    return ordered[max(target, 1) - 1] + 1e-6 if target else 0.0


def _within_by_kind(misses: list[dict[str, Any]], dm: list[float], hard: float) -> dict[str, str]:
    """Near misses within the hard distance (the guards alone stop them), by kind."""
    out: dict[str, list[int]] = {}
    for m, d in zip(misses, dm, strict=True):
        row = out.setdefault(m["kind"], [0, 0])
        row[0] += d <= hard
        row[1] += 1
    return {kind: f"{n}/{total}" for kind, (n, total) in sorted(out.items())}


def choose(pairs: dict[str, Any], static: dict[str, list[float]], minilm: dict[str, list[float]], hard: float,
           soft: float) -> tuple[float, float]:
    """The static model's thresholds, from the EVEN pairs only: the tightest hard threshold at which as many
    paraphrases hit as with MiniLM at its thresholds in force (guards included: a larger one only lets more near
    misses come within the distance), and the tightest soft one within which as many pairs (paraphrases and near
    misses) lie as MiniLM puts within its soft threshold (as many few-shot examples)."""
    para, miss = pairs["paraphrases"][::2], pairs["near_misses"][::2]
    want = sum(_hits(para, minilm["p"][::2], hard, soft))
    candidates = sorted(set(static["p"][::2]))
    chosen_hard = next((t + 1e-6 for t in candidates
                        if sum(_hits(para, static["p"][::2], t + 1e-6, max(t + 1e-6, soft))) >= want),
                       candidates[-1] + 1e-6)
    both_minilm = minilm["p"][::2] + minilm["m"][::2]
    both_static = static["p"][::2] + static["m"][::2]
    chosen_soft = max(_matched(both_static, sum(d <= soft for d in both_minilm)), chosen_hard)
    assert len(miss) == len(static["m"][::2])
    return round(chosen_hard, 4), round(chosen_soft, 4)


def evaluate(static: Any, dims: int) -> dict[str, Any]:
    from bench.scenarios import full_question, trivial_question
    from moe_core.knowledge.embeddings import MiniLMEmbedder
    from planner.settings import PlannerSettings

    data = yaml.safe_load((REPO / "tests/data/cache_pairs.yaml").read_text())
    paraphrases = [(p[0], p[1]) for p in data["paraphrases"]]
    misses = [(m["a"], m["b"]) for m in data["near_misses"]]
    settings = PlannerSettings()
    hard, soft = settings.cache_hard_threshold, settings.cache_soft_threshold
    minilm = MiniLMEmbedder(cache_size=0)
    result: dict[str, Any] = {"dims": dims, "pairs": {"paraphrases": len(paraphrases), "near_misses": len(misses)}}
    questions = [full_question(i) for i in range(20)] + [trivial_question(i) for i in range(20)]
    result["cpu_ms_per_question"] = {"minilm": _cpu_ms(minilm.embed, questions),
                                     "static": _cpu_ms(static.embed, questions)}
    dist = {name: {"p": _distances(embed, paraphrases), "m": _distances(embed, misses)}
            for name, embed in (("minilm", minilm.embed), ("static", static.embed))}
    s_hard, s_soft = choose({"paraphrases": paraphrases, "near_misses": misses}, dist["static"], dist["minilm"],
                            hard, soft)
    in_force = {"minilm": (hard, soft),
                "static": (settings.cache_static_hard_threshold, settings.cache_static_soft_threshold)}
    result["static_chosen_on_even_pairs"] = {"hard": s_hard, "soft": s_soft}
    for name, (h, so) in in_force.items():
        dp, dm = dist[name]["p"], dist[name]["m"]
        result[f"{name}_all_pairs"] = _rates(paraphrases, misses, dp, dm, h, so)
        result[f"{name}_held_apart"] = {  # the odd pairs: never used to choose a threshold
            **_rates(paraphrases[1::2], misses[1::2], dp[1::2], dm[1::2], h, so),
            "near_misses_within_hard_by_kind": _within_by_kind(data["near_misses"][1::2], dm[1::2], h)}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.static_embed", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from moe_core.knowledge.static_embedding import DIMENSION, StaticEmbedder, table_path

    started = time.process_time()
    path = table_path()  # the shipped table (built now if missing: the time is the build's)
    static = StaticEmbedder()
    result = {"table": path.name, "table_cpu_s": round(time.process_time() - started, 1),
              **evaluate(static, DIMENSION)}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
