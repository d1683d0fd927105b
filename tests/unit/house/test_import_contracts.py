"""The import contracts `make lint` checks (pyproject.toml, generated from the registry: moe_tools.docgen.deploy_lists):
on a copy of libs/ (and of one service), one forbidden import breaks the contract it is forbidden by, and the same
copy without it keeps every contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
LINT = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "libs", root / "libs", ignore=ignore)
    shutil.copytree(REPO / "services/gateway/gateway", root / "services/gateway/gateway", ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def lint(root: Path, probe: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    made = None
    if probe is not None:
        made = root / probe[0]
        made.write_text(probe[1] + "\n")
    try:
        env = {**os.environ, "PYTHONPATH": f"{root / 'libs'}:{root / 'services/gateway'}"}
        return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        if made is not None:
            made.unlink()


def test_the_copy_keeps_every_contract(tree: Path) -> None:
    run = lint(tree)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(("where", "line", "broken"), [
    ("libs/moe_core/runtime/probe.py", "import moe_core.llm.templates", "services -> stage -> domains"),
    ("libs/moe_core/contracts/probe.py", "from moe_core.runtime import bus", "services -> stage -> domains"),
    ("libs/moe_core/knowledge/probe.py", "import moe_core.audit.records", "services -> stage -> domains"),
    ("libs/moe_core/runtime/probe.py", "import gateway.app", "libs never import a service"),
    ("services/gateway/gateway/probe.py", "import planner.app", "services -> stage -> domains"),
    ("services/gateway/gateway/probe.py", "import moe_tools.docgen", "no service and no runtime code imports"),
    ("libs/moe_audit_verify/probe.py", "import moe_core.contracts", "the offline verifier is importable"),
])
def test_a_forbidden_import_breaks_its_contract(tree: Path, where: str, line: str, broken: str) -> None:
    run = lint(tree, (where, line))
    assert run.returncode != 0
    broken_lines = [row for row in run.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(broken) for row in broken_lines), run.stdout
