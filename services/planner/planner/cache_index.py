"""The semantic cache's in-process index: every entry of the namespace's cache topic (moe.cache-entries.v1, a
compacted topic, the cache's source of truth) held in memory, so a lookup is one matrix product in this
process instead of a Chroma query over HTTP.

Applied in topic order (one key, one partition: a flag always follows its entry). A flagged entry leaves the
index (it is never used again, not even as an example). Memory is bounded per tenant
(MOE_CACHE_INDEX_TENANT_MAX_MB, by an estimate of each entry's size: its vector and its texts); past the
bound the tenant's least recently used entries (stored or hit longest ago) are evicted from this replica's
index only: the topic and Chroma keep them, and a lookup that would have found one is a miss (the request is
planned). Distances are Chroma's cosine distances (1 - cosine similarity), exact, over unexpired entries of
the scope only, so `semantic_cache.decide` sees the candidates a filtered Chroma query returned.

Keyed by model: the index holds the vectors of one embedding model (`model`, the cache's: MOE_CACHE_EMBEDDING). An
entry whose vector another model made (its `model`; None is a MiniLM vector of an older planner) is never compared
with them: with `reembed` (the cache's model is the static one: ~0.1 ms a text) its normalised question, which every
entry holds, is embedded again as it is applied; without it (the cache's model is MiniLM: ~4-8 ms a text, on the
event loop, for every entry of the topic at each replica's start) the entry is left out of this index (counted:
`moe_semantic_cache_total{op="index",outcome="other_model"}`). The topic and Chroma keep it either way.
"""

from __future__ import annotations

import asyncio
import base64
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from moe_core.contracts import CacheEntry
from moe_core.knowledge.embeddings import MODEL_ID as MINILM_MODEL_ID
from moe_core.runtime.observability.metrics import SEMANTIC_CACHE

# the Python objects around an entry's texts and row (measured: tests/unit/planner/test_cache_index_memory.py)
ENTRY_OVERHEAD_BYTES = 2600
UNIT_TOLERANCE = 1e-6  # a float32 vector normalised once has a norm within ~1e-7 of 1


def text_bytes(entry: CacheEntry) -> int:
    """The characters of an entry's texts as the index holds them (its vector is held as a matrix row)."""
    return sum(len(t) for t in (entry.question, entry.normalised, entry.answer, entry.cache_key, entry.scope,
                                entry.tenant_id, entry.mode, entry.response_id, *entry.experts_used))


def encode_vector(vector: np.ndarray | list[float]) -> str:
    """The contract's form of an embedding: little-endian float32, base64."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def unit(vector: np.ndarray | list[float]) -> np.ndarray:
    """The vector at unit length; one already so (as the embedder's are) unchanged, bit for bit: the index holds
    an entry's vector as its row only, and `CacheIndex.get` gives back the vector the entry came with."""
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 and abs(norm - 1.0) > UNIT_TOLERANCE else v


@dataclass
class Indexed:
    entry: CacheEntry  # held without its vector (the scope's matrix row is the vector; `get` encodes it again)
    size: int


class _Scope:
    """One scope's unit vectors as the rows of one matrix (grown by a quarter, so at most a fifth of it is
    spare; a removed row is replaced by the last one), so a store or a flag changes one row instead of
    rebuilding the scope's matrix."""

    def __init__(self, dim: int) -> None:
        self.keys: list[str] = []  # the key of each row
        self.row: dict[str, int] = {}
        self.matrix = np.empty((8, dim), dtype=np.float32)
        self.created = np.empty(8, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, vector: np.ndarray, created_at: float) -> None:
        i = self.row.get(key)
        if i is None:
            i = len(self.keys)
            if i == len(self.matrix):
                more = max(8, i // 4)
                self.matrix = np.concatenate([self.matrix, np.empty((more, self.matrix.shape[1]), np.float32)])
                self.created = np.concatenate([self.created, np.empty(more, dtype=np.float64)])
            self.keys.append(key)
            self.row[key] = i
        self.matrix[i] = vector
        self.created[i] = created_at

    def remove(self, key: str) -> None:
        i = self.row.pop(key, None)
        if i is None:
            return
        last = len(self.keys) - 1
        if i != last:
            moved = self.keys[last]
            self.matrix[i], self.created[i] = self.matrix[last], self.created[last]
            self.keys[i], self.row[moved] = moved, i
        self.keys.pop()

    def nearest(self, vector: np.ndarray, k: int, newer_than: float) -> list[tuple[str, float]]:
        n = len(self.keys)
        dist = 1.0 - self.matrix[:n] @ vector  # on this thread: the service limits BLAS to one (moe_core.runtime.blas)
        live = np.flatnonzero(self.created[:n] >= newer_than)
        return [(self.keys[i], float(dist[i])) for i in live[np.argsort(dist[live], kind="stable")[:k]]]


@dataclass
class _Tenant:
    entries: OrderedDict[str, None] = field(default_factory=OrderedDict)  # least recently used first
    size: int = 0


class CacheIndex:
    """Entries by key, by scope (for the search) and by tenant (for the memory bound)."""

    def __init__(self, tenant_max_bytes: int, model: str = MINILM_MODEL_ID,
                 reembed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self.tenant_max_bytes = tenant_max_bytes
        self.model = model  # the model of every vector held
        self.reembed = reembed  # the texts' vectors by `model`, for an entry of another model (None: left out)
        self.other_model = 0  # entries of another model left out
        self.reembedded = 0
        self._entries: dict[str, Indexed] = {}
        self._scopes: dict[str, _Scope] = {}
        self._tenants: dict[str, _Tenant] = {}
        self.loaded = asyncio.Event()  # set once the topic was read up to where it stood at start
        self.applied = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def tenant_bytes(self, tenant_id: str) -> int:
        tenant = self._tenants.get(tenant_id)
        return tenant.size if tenant else 0

    def get(self, key: str) -> CacheEntry | None:
        """The entry as applied, its vector encoded from its row (the vector it came with when that was of unit
        length, as every embedding is; else that vector at unit length: the same cosine distances)."""
        found = self._entries.get(key)
        if found is None:
            return None
        scope = self._scopes[found.entry.scope]
        return found.entry.model_copy(update={"vector": encode_vector(scope.matrix[scope.row[key]])})

    def apply(self, entry: CacheEntry) -> None:
        """One message of the topic (idempotent: the same message twice leaves the same index)."""
        self.applied += 1
        self._remove(entry.cache_key)
        if entry.flagged:
            return
        vector = self._vector(entry)
        if vector is None:
            return
        size = vector.nbytes + text_bytes(entry) + ENTRY_OVERHEAD_BYTES
        self._entries[entry.cache_key] = Indexed(entry.model_copy(update={"vector": "", "model": self.model}), size)
        self._scopes.setdefault(entry.scope, _Scope(vector.shape[0])).add(entry.cache_key, vector, entry.created_at)
        tenant = self._tenants.setdefault(entry.tenant_id, _Tenant())
        tenant.entries[entry.cache_key] = None
        tenant.size += size
        while tenant.size > self.tenant_max_bytes and len(tenant.entries) > 1:
            oldest = next(iter(tenant.entries))
            self._remove(oldest)
            self.evicted += 1
            SEMANTIC_CACHE.labels("evict", "evicted").inc()

    def _vector(self, entry: CacheEntry) -> np.ndarray | None:
        """The entry's vector by this index's model: its own, embedded again, or None (left out)."""
        if (entry.model or MINILM_MODEL_ID) == self.model:
            return unit(decode_vector(entry.vector))
        if self.reembed is None:
            self.other_model += 1
            SEMANTIC_CACHE.labels("index", "other_model").inc()
            return None
        self.reembedded += 1
        SEMANTIC_CACHE.labels("index", "reembedded").inc()
        return unit(self.reembed([entry.normalised])[0])

    def touch(self, key: str) -> None:
        """A hit: the entry is the tenant's most recently used."""
        found = self._entries.get(key)
        if found is not None:
            self._tenants[found.entry.tenant_id].entries.move_to_end(key)

    def nearest(self, scope: str, vector: np.ndarray | list[float], k: int,
                newer_than: float) -> list[tuple[CacheEntry, float]]:
        """The k entries of `scope` created at or after `newer_than` nearest to `vector`, with their cosine
        distances, nearest first."""
        found = self._scopes.get(scope)
        if found is None or k <= 0:
            return []
        return [(self._entries[key].entry, dist) for key, dist in found.nearest(unit(vector), k, newer_than)]

    def _remove(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is None:
            return
        scope = self._scopes.get(old.entry.scope)
        if scope is not None:
            scope.remove(key)
            if not scope:
                del self._scopes[old.entry.scope]
        tenant = self._tenants.get(old.entry.tenant_id)
        if tenant is not None:
            tenant.entries.pop(key, None)
            tenant.size -= old.size
            if not tenant.entries:
                del self._tenants[old.entry.tenant_id]

