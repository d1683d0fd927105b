"""The import contracts `make lint` checks (pyproject.toml, generated from the registry: moe_tools.docgen.deploy_lists):
on a copy of libs/ (and of one service), each forbidden import is named under the contract it is forbidden by, and the
same copy without them keeps every contract. The forbidden imports are made at once, each in a probe file of its own,
and checked in one run (import-linter names every illegal import of a broken contract: a run per import cost ~5 s
each on the loaded machine)."""

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


PROBES = [
    ("libs/moe_core/runtime/probe_0.py", "import moe_core.llm.templates", "services -> stage -> domains"),
    ("libs/moe_core/contracts/probe_1.py", "from moe_core.runtime import bus", "services -> stage -> domains"),
    ("libs/moe_core/knowledge/probe_2.py", "import moe_core.audit.records", "services -> stage -> domains"),
    ("libs/moe_core/runtime/probe_3.py", "import gateway.app", "libs never import a service"),
    ("services/gateway/gateway/probe_4.py", "import planner.app", "services -> stage -> domains"),
    ("services/gateway/gateway/probe_5.py", "import moe_tools.docgen", "no service and no runtime code imports"),
    ("libs/moe_audit_verify/probe_6.py", "import moe_core.contracts", "the offline verifier is importable"),
]


def sections(report: str) -> dict[str, str]:
    """The report's broken contracts: each contract's name -> the text under it (its illegal imports)."""
    lines = report.split("\n----------------\nBroken contracts\n----------------\n", 1)[-1].splitlines()
    heads = [i for i in range(len(lines) - 1) if lines[i] and lines[i + 1] == "-" * len(lines[i])]
    return {lines[i]: "\n".join(lines[i + 2:end]) for i, end in zip(heads, [*heads[1:], len(lines)], strict=True)}


@pytest.fixture(scope="module")
def probed(tree: Path) -> tuple[int, dict[str, str], str]:
    """One run with every forbidden import in place: (exit code, the broken contracts' sections, the report)."""
    made = [tree / where for where, _, _ in PROBES]
    for path, (_, line, _) in zip(made, PROBES, strict=True):
        path.write_text(line + "\n")
    try:
        run = lint(tree)
    finally:
        for path in made:
            path.unlink()
    return run.returncode, sections(run.stdout), run.stdout


def named(where: str, line: str) -> str:
    """The illegal import as the report names it: `importer -> imported`."""
    module = where.removesuffix(".py").split("/")
    importer = ".".join(module[1:] if module[0] == "libs" else module[2:])
    words = line.split()
    imported = words[1] if words[0] == "import" else f"{words[1]}.{words[3]}"
    return f"{importer} -> {imported} (l.1)"


@pytest.mark.parametrize(("where", "line", "broken"), PROBES)
def test_a_forbidden_import_breaks_its_contract(probed: tuple[int, dict[str, str], str], where: str, line: str,
                                                broken: str) -> None:
    code, broken_contracts, report = probed
    assert code != 0
    under = [text for name, text in broken_contracts.items() if name.startswith(broken)]
    assert under and named(where, line) in under[0], report
