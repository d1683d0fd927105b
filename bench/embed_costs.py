"""CPU of one question embedding (the planner's MiniLM), and where it goes:

  python -m bench.embed_costs [N]

Embeds the bench's full and trivial questions (normalised, as the planner does) N times each with the
embedder's vector cache off, and reports CPU milliseconds per embedding (`time.process_time`, so other
users' load on a shared machine changes it less than wall time would), split into tokenization, the
onnxruntime session and the pooling, for the embedder's model (the wheel's file converted for the int8
MatMulNBits kernel, moe_core.knowledge.embedding_model) and the reference (the wheel's file as it is, float32 kernel);
then a batch of 8 questions at once per question, and the decisions on the labelled cache pairs and router set
(tests/data) with their largest distance difference against the reference, which must not change any
decision: the embedder alone, batched beside a longer text, and an entry stored with the reference's vector
looked up with the embedder's (what an old entry on the cache-entries topic meets).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def cpu_ms(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) * 1000 / n


def questions() -> list[str]:
    from bench.scenarios import full_question, trivial_question
    from planner.cache_text import normalise

    return [normalise(full_question(7)), normalise(trivial_question(7))]


def split(embedder: Any, text: str, n: int) -> dict[str, float]:
    """CPU ms of each step of `embedder._compute` for one text."""
    embedder.embed(["warm up"])
    tokenizer, session = embedder._tokenizer, embedder._session
    encoding = tokenizer.encode_batch([text])
    ids = np.array([e.ids for e in encoding], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoding], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in embedder._inputs:
        feeds["token_type_ids"] = np.zeros_like(ids)
    hidden = session.run(None, feeds)[0]

    def pool() -> None:
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    return {"tokens": float(ids.shape[1]),
            "tokenize": cpu_ms(lambda: tokenizer.encode_batch([text]), n),
            "session": cpu_ms(lambda: session.run(None, feeds), n),
            "pool": cpu_ms(pool, n),
            "total": cpu_ms(lambda: embedder._compute([text]), n)}


def decisions(embed: Callable[[list[str]], np.ndarray]) -> tuple[list[bool], list[float], list[Any]]:
    """Hit or not for every labelled cache pair, their distances, and the router's decision per question."""
    import yaml

    from moe_core.knowledge.embeddings import cosine_distance
    from planner import router
    from planner.cache_text import normalise
    from planner.router_prototypes import MIXED, PROTOTYPES
    from planner.semantic_cache import Candidate, decide
    from planner.settings import PlannerSettings

    settings = PlannerSettings()
    data = yaml.safe_load((REPO / "tests/data/cache_pairs.yaml").read_text())
    pairs = [(p[0], p[1]) for p in data["paraphrases"]] + [(m["a"], m["b"]) for m in data["near_misses"]]
    hits, distances = [], []
    for a, b in pairs:  # one pair at a time, as a lookup embeds one question
        va, vb = embed([normalise(a)])[0], embed([normalise(b)])[0]
        distance = cosine_distance(va, vb)
        stored = Candidate(key="k", question=a, answer="cached", distance=distance)
        hits.append(decide([stored], b, settings.cache_hard_threshold, settings.cache_soft_threshold, 2).hit
                    is not None)
        distances.append(distance)
    routes = yaml.safe_load((REPO / "tests/data/router_set.yaml").read_text())
    labels = [c for c, qs in PROTOTYPES.items() for _ in qs]
    protos = embed([normalise(q) for qs in PROTOTYPES.values() for q in qs])
    decided = []
    for question in [q for qs in routes["routed"].values() for q in qs] + list(routes["planner"]):
        dist = 1.0 - protos @ embed([normalise(question)])[0]
        nearest = sorted(zip(labels, dist.tolist(), strict=True), key=lambda x: x[1])[: router.NEIGHBOURS]
        route = router.decide(nearest, settings.router_minilm_threshold, settings.router_minilm_margin)  # MiniLM's
        # nearest to the mixed prototypes is no category to the planner: as general (planner.app, trivial_category)
        decided.append(route and ("general" if route.category == MIXED else route.category, route.clear))
    return hits, distances, decided


def coincident(embedder: Any, texts: list[str], n: int) -> float:
    """CPU ms per text when `texts` are asked for by one thread each at the same time."""
    import threading

    def once() -> None:
        embedder.clear()
        threads = [threading.Thread(target=embedder.embed, args=([t],)) for t in texts]
        with embedder._run_lock:  # they all queue while a run is on, as under load
            for thread in threads:
                thread.start()
            while len(embedder._queue) < len(texts):
                time.sleep(0.0005)
        for thread in threads:
            thread.join()

    return cpu_ms(once, n) / len(texts)


def _changed(a: list[Any], b: list[Any]) -> int:
    return sum(1 for x, y in zip(a, b, strict=True) if x != y)


def _largest(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def main(n: int) -> None:
    from bench.scenarios import full_question, trivial_question
    from moe_core.knowledge.embeddings import MiniLMEmbedder
    from planner.cache_text import normalise

    embedder, reference = MiniLMEmbedder(cache_size=0), MiniLMEmbedder(cache_size=0, reference=True)
    for text in questions():
        for name, which in (("reference", reference), ("embedder", embedder)):
            parts = split(which, text, n)
            print(f"{name}: {len(text)} chars, {parts['tokens']:.0f} tokens: " + ", ".join(
                f"{k} {v:.2f} ms" for k, v in parts.items() if k != "tokens") + " CPU per embedding")
    batched = MiniLMEmbedder()
    for name, make in (("full", full_question), ("trivial", trivial_question)):
        texts = [normalise(make(i)) for i in range(8)]

        def one_by_one(t: list[str] = texts) -> None:
            for x in t:
                embedder._compute([x])

        alone = cpu_ms(one_by_one, max(n // 8, 5)) / len(texts)
        together = coincident(batched, texts, max(n // 8, 5))
        print(f"8 {name} questions at once: {together:.2f} ms CPU per question coalesced, {alone:.2f} one by one")
    ref_hits, ref_d, ref_routes = decisions(reference._compute)
    hits, dist, routes = decisions(embedder._compute)
    print(f"embedder against the reference: cache pairs {sum(hits)}/{len(hits)} hits ({sum(ref_hits)}), "
          f"{_changed(hits, ref_hits)} decisions differ, largest distance difference {_largest(dist, ref_d):.1e}; "
          f"router: {_changed(routes, ref_routes)} of {len(routes)} decisions differ")
    padded = " ".join(["padding"] * 40)
    mixed_hits, mixed_d, mixed_routes = decisions(lambda ts: embedder._compute([*ts, padded])[: len(ts)])
    print(f"embedder in a batch with a longer text: {_changed(hits, mixed_hits)} cache decisions differ, largest "
          f"distance difference {_largest(dist, mixed_d):.1e}; router: {_changed(routes, mixed_routes)} differ")
    turn = [0]

    def stored_by_reference(ts: list[str]) -> np.ndarray:  # decisions() embeds a pair's stored text first
        turn[0] += 1
        return (reference if turn[0] % 2 else embedder)._compute(ts)

    old_hits, old_d, _ = decisions(stored_by_reference)
    print(f"reference's stored vector, embedder's question: {_changed(old_hits, ref_hits)} cache decisions differ "
          f"from the reference's, largest distance difference {_largest(old_d, ref_d):.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
