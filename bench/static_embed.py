"""Could a static embedding (model2vec's method) replace the planner's MiniLM? Distilled here from the packaged model
itself, at build time, with nothing downloaded, and measured against it (issue 52, item 2):

    python -m bench.static_embed [--dims 256] [--out FILE]

model2vec's distillation without its dependencies (it needs torch and transformers; the method is small): every
token of the packaged WordPiece vocabulary goes through the packaged MiniLM alone (`[CLS] token [SEP]`, mean-pooled
as the embedder pools), the vectors are reduced by PCA to `--dims` and weighted by SIF on the token's rank (the
vocabulary's order standing for its frequency, as model2vec assumes). A question's static vector is then the mean of
its tokens' vectors: one table lookup, no network.

Reported: CPU per question (process time; the embedder's for the same questions beside it), and on the labelled
cache pairs (tests/data/cache_pairs.yaml: paraphrases, where a hit is right, and near misses, where a hit is a wrong
answer) the planner's own decision (`planner.semantic_cache.decide`, its guards included) at the distance
thresholds in force (and how many near misses the distance alone would let through, the guards aside), and at the
static model's best threshold: the hard threshold that keeps every near miss out,
chosen on half of the pairs and counted on the other half (the held-apart half). Nothing is written unless `--out`.
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


def _tuned(paraphrases: list[Any], misses: list[Any], dp: list[float], dm: list[float], ratio: float) -> float:
    best = 0.0
    for t in sorted(set(dp + dm)):
        if any(_hits(misses, dm, t + 1e-6, (t + 1e-6) * ratio)):
            break
        best = t + 1e-6
    return best


def _cpu_ms(embed: Any, questions: list[str], rounds: int = 5) -> float:
    started = time.process_time()
    for _ in range(rounds):
        for q in questions:
            embed([q])
    return round((time.process_time() - started) * 1000 / (rounds * len(questions)), 3)


def evaluate(static: Static, dims: int) -> dict[str, Any]:
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
    for name, embed in (("minilm", minilm.embed), ("static", static.embed)):
        dp, dm = _distances(embed, paraphrases), _distances(embed, misses)
        result[f"{name}_at_thresholds_in_force"] = _rates(paraphrases, misses, dp, dm, hard, soft)
        # the held-apart half: thresholds chosen on the even pairs (the largest hard threshold at which the
        # planner's decision, guards included, takes no near miss; the soft one at the ratio in force), counted
        # on the odd ones
        chosen = _tuned(paraphrases[::2], misses[::2], dp[::2], dm[::2], soft / hard)
        result[f"{name}_tuned_on_half"] = _rates(paraphrases[1::2], misses[1::2], dp[1::2], dm[1::2], chosen,
                                                 chosen * soft / hard)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.static_embed", description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.process_time()
    tokenizer, vectors = token_vectors()
    static = Static(tokenizer, distil(vectors, args.dims))
    result = {"distil_cpu_s": round(time.process_time() - started, 1), **evaluate(static, args.dims)}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
