"""fleetctl's data folder is the folder itself, not a link to it: processes started through one path are found
running through the other (a helper's checkout whose .data links to the running one's dropped its pid files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
LOCAL = Path(__file__).resolve().parents[3] / "deploy" / "local"


def test_a_linked_data_folder_is_resolved(tmp_path: Path) -> None:
    real, link = tmp_path / "data", tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    out = subprocess.run([sys.executable, "-c", "from fleetlib import config; print(config.DATA, config.LOGS)"],
                         env={**os.environ, "MOE_DATA_DIR": str(link), "PYTHONPATH": str(LOCAL)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(real), str(real / "logs")]
