"""A service's runtime does not import numpy (issue 52: ~0.5-0.9 s of CPU in each process of the gateway, the
merger, the expert worker, which never use it), and the BLAS limit of its lifespan (moe_core.runtime.blas) still
holds for a numpy imported after it. Each case runs in a fresh interpreter: numpy is loaded in this one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def run(probe: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}}
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout


@pytest.mark.parametrize("module", ["moe_core.runtime.service", "gateway.app", "merger.app", "expert_worker.app"])
def test_the_runtime_does_not_load_numpy(module: str) -> None:
    assert run(f"import sys, {module}\nprint('numpy' in sys.modules)").split()[-1] == "False"


def test_a_numpy_imported_after_the_limit_is_limited() -> None:
    """One thread (a service's default); OpenBLAS starts one per core otherwise (2 on the CI machine)."""
    probe = "from moe_core.runtime.blas import blas_threads, limit_blas_threads\n"
    probe += "limit_blas_threads(1)\nimport numpy\nprint(blas_threads())"
    assert run(probe).split("\n")[-2] == "[1]"
