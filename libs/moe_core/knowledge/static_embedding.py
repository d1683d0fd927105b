"""A static embedding of the packaged MiniLM (model2vec's method, distilled here, nothing downloaded): the semantic
cache's vectors, 50-85x less CPU per question than running MiniLM (issue 52, item 2).

The table: every token of the packaged WordPiece vocabulary goes through the packaged MiniLM alone (`[CLS] token
[SEP]`, mean-pooled as the embedder pools; the wheel's file on onnxruntime's float32 kernel, one thread, fixed
batches), the vectors are reduced by PCA to `DIMENSION` and weighted by SIF on the token's rank (the vocabulary's
order standing for its frequency, as model2vec assumes). A text's vector is the mean of its tokens' rows, at unit
length: one table lookup. `bench/static_embed.py` measured the method against MiniLM first.

The table is built once (about a minute of CPU: every vocabulary token through the model) into
MOE_EMBEDDING_CACHE_DIR beside the converted model (`moe_core.knowledge.embedding_model`), named by the digests of
the model and tokenizer files and `DISTILLER`: the same files give the same bytes on one machine (a fixed batch
order, one thread, an SVD of a fixed matrix; a component's sign may differ across BLAS builds, which changes no
distance). Processes that need it at the same time take a file lock, so one builds and the others load its file. It
is loaded memory-mapped (31 MB, shared by the processes of a host): only the rows of tokens used are read, or with
`load(resident=True)` (the planner's MOE_CACHE_STATIC_TABLE_RESIDENT) every page at once, at start-up.

`MODEL_ID` names the vectors: the cache's entries and its index are keyed by the model that made their vector, and a
static vector is never compared with a MiniLM one (planner.cache_index).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from moe_core.knowledge.embedding_model import cache_dir
from moe_core.knowledge.embeddings import MODEL_ID as MINILM_MODEL_ID
from moe_core.knowledge.embeddings import model_files

log = logging.getLogger(__name__)

DIMENSION = 256
DISTILLER = "m2v-pca256-sif1e-4-v1"  # changes with anything that changes the table's bytes
MODEL_ID = f"{MINILM_MODEL_ID}-static-{DISTILLER}"
SIF = 1e-4  # model2vec's default sif_coefficient
BATCH = 512
MAX_TOKENS = 512  # a longer text's vector is that of its first 512 tokens (model2vec's default)
ONE_KEPT = 256  # texts whose vector `one` remembers (~1 KB each): the requests a planner has in flight, and more
SOURCE_DIMENSION = 384


def token_vectors(model: Path, tokenizer_file: Path, limit: int | None = None) -> np.ndarray:
    """One mean-pooled MiniLM vector per vocabulary id (the first `limit` ids only, for a test)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    size = min(tokenizer.get_vocab_size(), limit or tokenizer.get_vocab_size())
    out = np.zeros((size, SOURCE_DIMENSION), dtype=np.float32)
    for start in range(0, size, BATCH):
        ids = np.array([[cls, i, sep] for i in range(start, min(start + BATCH, size))], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        out[start:start + len(ids)] = session.run(None, feeds)[0].mean(axis=1)
    return out


def distil(vectors: np.ndarray, dims: int = DIMENSION) -> np.ndarray:
    """PCA to `dims`, then SIF weights on the token's rank (model2vec's post-processing)."""
    centred = (vectors - vectors.mean(axis=0)).astype(np.float64)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dims].T
    ranks = 1.0 / np.arange(2, len(reduced) + 2)
    weights = SIF / (SIF + ranks / ranks.sum())
    return (reduced * weights[:, None]).astype(np.float32)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def table_path(model: Path | None = None, tokenizer_file: Path | None = None) -> Path:
    """The table's file in `cache_dir()`, built now if missing (under a lock: one builder per host)."""
    if model is None or tokenizer_file is None:
        model, tokenizer_file = model_files()
    folder = cache_dir()
    target = folder / f"static-{_digest(model, tokenizer_file)}-{DISTILLER}.npy"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{target.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits here, then finds the file
        if not target.is_file():
            started = time.process_time()
            table = distil(token_vectors(model, tokenizer_file))
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".building-", suffix=".npy", delete=False) as file:
                np.save(file, table)
            os.chmod(file.name, 0o644)  # read by every component user (deploy/local/fleetlib/services.py)
            os.replace(file.name, target)
            log.info("static embedding: built %s in %.1f s of CPU", target, time.process_time() - started)
    return target


def touch(table: np.ndarray) -> int:
    """Read one value of every page of a memory-mapped table, so all its pages are resident (the page cache's,
    shared by the processes of a host; clean, so the kernel may still drop them under pressure) instead of each
    being read when a text first uses one of its rows: the pages a process reads count in its resident set, so a
    process that starts cold grows by up to the table's size as new tokens come. Returns the pages read."""
    flat = table.reshape(-1)
    step = max(1, mmap.PAGESIZE // flat.itemsize)
    np.add.reduce(flat[::step], dtype=np.float64)  # a strided read: one value of each page, each page faulted in
    return -(-flat.size // step)


class StaticEmbedder:
    """Unit vectors (len(texts), DIMENSION) from the table: the mean of the text's token rows."""

    model_id = MODEL_ID
    dimension = DIMENSION

    def __init__(self, table: np.ndarray | None = None, tokenizer: Any = None) -> None:
        self._table = table
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        self._special: set[int] = set()
        if tokenizer is not None:
            self._prepare(tokenizer)
        self.one = lru_cache(maxsize=ONE_KEPT)(self._one)

    def _one(self, text: str) -> np.ndarray:
        """`one(text)`: the vector of one text, read-only, remembered for the next ONE_KEPT texts asked: the planner
        embeds a question for the semantic cache's lookup, for the router and again when its answer is stored (three
        embeddings of a trivial question, ~0.1 ms of CPU each, where one does; issue 52)."""
        vector = self.embed([text])[0]
        vector.flags.writeable = False
        return vector

    def _prepare(self, tokenizer: Any) -> None:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._special = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")}
        self._tokenizer = tokenizer

    def load(self, resident: bool = False) -> None:
        """The tokenizer and the table (memory-mapped); with `resident`, every page of the table read once now."""
        with self._lock:
            if self._table is None or self._tokenizer is None:
                from tokenizers import Tokenizer

                model, tokenizer_file = model_files()
                if self._tokenizer is None:
                    self._prepare(Tokenizer.from_file(str(tokenizer_file)))
                if self._table is None:
                    self._table = np.load(table_path(model, tokenizer_file), mmap_mode="r")
            if resident:
                touch(self._table)

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._table is None or self._tokenizer is None:
            self.load()
        assert self._table is not None
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts)) if texts else []):
            ids = [i for i in encoding.ids if i not in self._special]
            if not ids:
                continue  # no token (an empty text): the zero vector, at distance 1 from every other
            vector = np.asarray(self._table[ids], dtype=np.float32).mean(axis=0)
            out[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return out


@lru_cache(maxsize=1)
def get_static_embedder() -> StaticEmbedder:
    """The process-wide static embedder (its table loaded, or built, on first use)."""
    return StaticEmbedder()
