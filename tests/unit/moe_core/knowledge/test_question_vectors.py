"""The shared question vector's Redis value and key, and graph-rag's reading of a presence marker (pure)."""

from __future__ import annotations

import numpy as np
import pytest

import moe_core.knowledge.question_vectors as question_vectors
from graph_rag.doc_scope import DocumentScope
from moe_core.knowledge.embeddings import DIMENSION

pytestmark = pytest.mark.unit


def test_a_vector_survives_the_round_trip_and_a_malformed_value_is_none() -> None:
    vector = np.linspace(-1, 1, DIMENSION, dtype=np.float32)
    raw = question_vectors.encode(vector)
    assert isinstance(raw, str) and question_vectors.decode(raw) == vector.tolist()  # exact, float32
    for bad in (None, "", "not base64!", question_vectors.encode(vector[:10]), raw[:-8]):
        assert question_vectors.decode(bad) is None  # the reader then embeds the question itself


def test_the_key_names_the_exact_text_and_the_namespace() -> None:
    key = question_vectors.key("ns", "who replaces a lost vpn token")
    assert key.startswith("qvec:ns:") and key == question_vectors.key("ns", "who replaces a lost vpn token")
    assert key != question_vectors.key("ns", "who replaces a lost vpn token?")
    assert key != question_vectors.key("other", "who replaces a lost vpn token")


def test_a_presence_marker_counts_only_at_the_versions_it_was_found_at() -> None:
    def scope(marker: str | None, versions: list[str]) -> DocumentScope:
        return DocumentScope("t", ["t", "__shared__"], versions, marker, "q", None)

    assert scope("3.0=0", ["3", "0"]).has_documents() is False
    assert scope("3.0=1", ["3", "0"]).has_documents() is True
    assert scope("3.0=0", ["4", "0"]).has_documents() is None  # the tenant's documents changed since
    assert scope("3.0=0", ["3", "1"]).has_documents() is None  # the shared documents changed since
    assert scope(None, ["0", "0"]).has_documents() is None
