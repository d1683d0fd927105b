"""The tests mirror the code tree within each mirrored tier (issue 51): a test file in tests/<tier>/ sits in the folder
of the code it tests, named after a real code package: a service's import package (tests/unit/planner/), a library
package (tests/unit/moe_audit_verify/), or moe_core's package by audience
(tests/unit/moe_core/policy/). A journey through the fleet goes by the package whose behaviour it checks (the edge's
protocols: gateway; the guardrails: guardrail; the semantic cache: planner); a file about two packages sits with the
one its docstring names first. Six folders are not named after a package of services/ or libs/, and each holds what
its name says: `house` (checks of the whole house: import contracts, cycles, function length, the test layout, the
Cypher scan), `support` (the suite's own machinery, tests/support), `deploy` (the tooling under deploy/), `bench`
(bench/), `grafana` (the dashboards and alert rules under grafana/) and `fleet` (a journey or fault that checks the
whole fleet, several services equally: a broker or store lost under load, every record delivered twice, two tenants
through every service; kept for those alone).

Tiers left flat (FLAT) are one subject each: `deploy` is the tier of deploy/, compose/, helm/ and the docs' checks
(its package would be the house folder `deploy` for every file), `fuzz` is one file fuzzing the two HTTP APIs (the
gateway's and the control plane's) equally, `newcomer` is one file about the whole product's first five minutes.
Helpers, fixture modules and conftest.py stay at a tier's top, so their fixtures reach every folder."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
MIRRORED = ("unit", "infra", "broker", "chaos", "lineage", "graph", "e2e", "console", "observability", "bench")
FLAT = ("deploy", "fuzz", "newcomer")
HOUSE_FOLDERS = frozenset({"house", "support", "deploy", "bench", "grafana", "fleet"})


def code_packages(repo: Path) -> frozenset[str]:
    """The folder names a test may sit in: services/<service>/<package>, libs/<package>, libs/moe_core/<package>."""
    services = {p.parent.name for p in repo.glob("services/*/*/__init__.py")}
    libs = {p.parent.name for p in repo.glob("libs/*/__init__.py")} - {"moe_core"}
    core = {f"moe_core/{p.parent.name}" for p in repo.glob("libs/moe_core/*/__init__.py")}
    return frozenset(services | libs | core | HOUSE_FOLDERS)


def misplaced(tier: Path, allowed: frozenset[str]) -> list[str]:
    """Every test file of a tier outside a folder named after a code package, or in a folder without __init__.py."""
    wrong = []
    for path in sorted(tier.rglob("test_*.py")):
        folder = path.parent.relative_to(tier).as_posix()
        if folder not in allowed:
            wrong.append(f"{path.relative_to(tier.parent.parent)}: not in a folder named after a code package "
                         f"(tests/{tier.name}/<package>/)")
        for parent in path.parents:
            if parent == tier.parent:
                break
            if not (parent / "__init__.py").exists():
                wrong.append(f"{path.relative_to(tier.parent.parent)}: {parent.name}/ has no __init__.py")
    return wrong


def test_the_allowed_folders_are_the_code_packages() -> None:
    allowed = code_packages(REPO)
    assert {"planner", "control_plane", "mcp_service", "moe_audit_verify", "moe_tools", "moe_core/policy",
            "moe_core/runtime"} <= allowed
    assert "moe_core" not in allowed  # moe_core's tests sit in its packages by audience


def test_every_tier_is_mirrored_or_named_flat() -> None:
    tiers = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and any(p.rglob("test_*.py"))}
    assert tiers == set(MIRRORED) | set(FLAT)


@pytest.mark.parametrize("tier", MIRRORED)
def test_every_test_file_of_a_mirrored_tier_sits_in_its_code_package(tier: str) -> None:
    assert misplaced(REPO / "tests" / tier, code_packages(REPO)) == []


def test_a_stray_test_file_is_named(tmp_path: Path) -> None:
    tier = tmp_path / "tests" / "unit"
    for folder in ("planner", "plannerx", "moe_core/llm"):
        (tier / folder).mkdir(parents=True)
        (tier / folder / "test_a.py").write_text("")
    (tier / "test_flat.py").write_text("")
    for folder in (tier, tier / "planner", tier / "plannerx", tier / "moe_core"):
        (folder / "__init__.py").write_text("")
    assert misplaced(tier, frozenset({"planner", "moe_core/llm"})) == [
        "tests/unit/moe_core/llm/test_a.py: llm/ has no __init__.py",
        "tests/unit/plannerx/test_a.py: not in a folder named after a code package (tests/unit/<package>/)",
        "tests/unit/test_flat.py: not in a folder named after a code package (tests/unit/<package>/)",
    ]
