"""The suite's worker scopes (tests/support/tiers.py): a tier package goes to one worker, except the modules SPLIT
names (the chaos tier's own-fleet cases, beside its shared fleet's cases), and every scope's expected time is known
(an unknown one starts last, where a long one would be the run's tail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import tiers

pytestmark = pytest.mark.unit
TESTS = Path(__file__).resolve().parents[2]


def test_a_test_goes_to_its_package_unless_its_module_is_split() -> None:
    assert tiers.scope("tests/e2e/control_plane/test_admin_keys.py::test_a[x/y]") == "e2e"
    assert tiers.scope("tests/unit/moe_core/llm/test_token_budget.py::test_a") == "unit"  # a mirrored tier's folder
    assert tiers.scope("tests/chaos/fleet/test_store_outages.py::test_a[redis-hung]") == "chaos"
    assert tiers.scope("tests/chaos/fleet/test_cluster.py::test_redis_flushed_then_restarted_empty_mid_load") == (
        "chaos-own-fleets")
    assert tiers.scope("tests/chaos/control_plane/test_restore_drill.py::test_a") == "chaos-own-fleets"


def test_every_split_module_exists_and_every_scope_has_an_expected_time() -> None:
    for module in tiers.SPLIT:
        assert (TESTS / module).is_file(), module
    packages = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.rglob("test_*.py"))} - {"newcomer"}
    assert packages | set(tiers.SPLIT.values()) <= set(tiers.EXPECTED_S)
