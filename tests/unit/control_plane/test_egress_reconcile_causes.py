"""Why OPA's egress module is not the approved one (control_plane.policy.egress_reconcile.cause_of), and which file is
the reviewed egress policy (control_plane.policy.egress_reviewed): a push that never happened, a restart or a reload
that brought the reviewed file back, and anything else, which someone put."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.policy.egress_reconcile import cause_of
from control_plane.policy.egress_reviewed import Reviewed, reviewed_file
from control_plane.policy.egress_simulation import candidate_digest

pytestmark = pytest.mark.unit
FILE = "package moe.egress\n\nrules := []\n"
APPROVED = FILE + "# approved\n"


def _change(pushed_to: str = "opa-1", applied: str | None = "sha256:v") -> dict[str, str | None]:
    return {"module": APPROVED, "applied_version": applied, "pushed_to": pushed_to}


def test_the_causes() -> None:
    reviewed = Reviewed(Path("egress.rego"), FILE)
    assert cause_of(FILE, reviewed, _change(applied=None), "opa-1") == "not_pushed"
    assert cause_of(FILE, reviewed, _change(), "opa-2") == "opa_restarted"
    assert cause_of(FILE, reviewed, _change(), "opa-1") == "file_reloaded"
    assert cause_of(FILE + "# loose\n", reviewed, _change(), "opa-2") == "unapproved_put"
    assert cause_of(FILE + "# loose\n", reviewed, _change(), "opa-1") == "unapproved_put"
    # no reviewed file to compare with: a new OPA instance loaded its files, the same one was given another module
    assert cause_of(FILE, None, _change(), "opa-2") == "opa_restarted"
    assert cause_of(FILE, None, _change(), "opa-1") == "unapproved_put"


def test_the_reviewed_file_is_the_one_of_package_moe_egress(tmp_path: Path) -> None:
    assert reviewed_file(None) is None and reviewed_file(tmp_path / "none") is None
    (tmp_path / "other.rego").write_text("package moe.other\n")
    (tmp_path / "egress_test.rego").write_text(FILE)  # opa test's, not loaded by OPA
    assert reviewed_file(tmp_path) is None
    (tmp_path / "egress.rego").write_text(FILE)
    found = reviewed_file(tmp_path)
    assert found is not None and found.path.name == "egress.rego" and found.digest == candidate_digest(FILE)
    (tmp_path / "second.rego").write_text(FILE)
    assert reviewed_file(tmp_path) is None, "two modules of the package: not one reviewed file"
