"""The planner's embedding CPU per request with each semantic-cache model, in process, no infrastructure (issue 52,
item 2): what the planner embeds for one new question of the bench, before (MOE_CACHE_EMBEDDING=minilm) and after
(static), alternately, `--rounds` times:

    python -m bench.cache_embed_cpu [--questions 40] [--rounds 2] [--entries 2000] [--out FILE]

- minilm: the lookup runs MiniLM; the router (a trivial question only) and the store reuse that vector.
- static: the lookup and the store each run the static model (the store embeds again: nothing is carried); a
  trivial question's router runs MiniLM; a full (complex) question runs no MiniLM at all.
Each question is new (the embedder's recent vectors cleared), and the lookup includes the index's nearest entries
among `--entries` of one scope. Also the index's memory per entry with each model's vectors (the bound,
MOE_CACHE_INDEX_TENANT_MAX_MB, counts it). Process time; the machine's load is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from moe_core.contracts import CacheEntry


def _index(model: str, dim: int, entries: int) -> Any:
    from planner.cache_index import CacheIndex, encode_vector

    index = CacheIndex(1 << 34, model)
    rng = np.random.default_rng(0)
    for i in range(entries):
        v = rng.standard_normal(dim).astype(np.float32)
        index.apply(CacheEntry(cache_key=f"k{i}", scope="s", tenant_id="t", mode="m", question=f"question {i}",
                               normalised=f"question {i}", vector=encode_vector(v / np.linalg.norm(v)), model=model,
                               answer="a" * 400, response_id=f"r{i}", created_at=time.time()))
    return index


def _per_request(questions: list[str], trivial: bool, static: bool, minilm: Any, fast: Any, index: Any) -> float:
    from planner.cache_text import normalise

    minilm.clear()
    started = time.process_time()
    for q in questions:
        text = normalise(q)
        [vector] = (fast if static else minilm).embed([text])  # the lookup
        index.nearest("s", vector, 5, 0.0)
        if trivial:
            minilm.embed([text])  # the router (from the recent vectors when the lookup was MiniLM's)
        if static:
            fast.embed([text])  # the store
    return (time.process_time() - started) * 1000 / len(questions)


def measure(questions: int, rounds: int, entries: int) -> dict[str, Any]:
    from bench.scenarios import full_question, trivial_question
    from moe_core.knowledge.embeddings import MODEL_ID, MiniLMEmbedder
    from moe_core.knowledge.static_embedding import DIMENSION, StaticEmbedder
    from moe_core.knowledge.static_embedding import MODEL_ID as STATIC_ID
    from moe_core.runtime.blas import limit_blas_threads

    limit_blas_threads(1)  # as the services do (moe_core.runtime.blas): on a loaded machine more threads cost more
    minilm, fast = MiniLMEmbedder(cache_size=4096), StaticEmbedder()
    minilm.embed(["warm up"]), fast.embed(["warm up"])
    indexes = {False: _index(MODEL_ID, 384, entries), True: _index(STATIC_ID, DIMENSION, entries)}
    result: dict[str, Any] = {"load": os.getloadavg()[0], "entries": entries, "runs": []}
    for r in range(rounds):
        for static in (False, True):  # before, after, alternately
            row: dict[str, Any] = {"cache": "static" if static else "minilm"}
            for kind, make in (("full", full_question), ("trivial", trivial_question)):
                texts = [f"{make(1000 * r + i)} #{r}" for i in range(questions)]
                row[f"{kind}_ms"] = round(_per_request(texts, kind == "trivial", static, minilm, fast,
                                                       indexes[static]), 3)
            result["runs"].append(row)
    result["index_bytes_per_entry"] = {"minilm": indexes[False].tenant_bytes("t") // entries,
                                       "static": indexes[True].tenant_bytes("t") // entries}
    result["load_after"] = os.getloadavg()[0]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_embed_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = measure(args.questions, args.rounds, args.entries)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
