"""The reviewed egress policy: the file of package moe.egress among the Rego files OPA loads (policy/opa/egress.rego
in MOE_OPA_POLICY_DIR, the same files OPA watches), its text and digest. A change is simulated and approved against
this digest; a newer reviewed file supersedes an approved change (control_plane.policy.egress_reconcile)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from control_plane.policy.api import rego_files
from control_plane.policy.egress_simulation import EGRESS_PACKAGE, candidate_digest


@dataclass(frozen=True)
class Reviewed:
    path: Path
    text: str

    @property
    def digest(self) -> str:
        return candidate_digest(self.text)


def reviewed_file(directory: Path | None) -> Reviewed | None:
    """The one file of package moe.egress in `directory` (None: no directory, or not exactly one such file)."""
    if directory is None or not directory.is_dir():
        return None
    found = [Reviewed(p, text) for p in rego_files(directory) if EGRESS_PACKAGE.search(text := p.read_text())]
    return found[0] if len(found) == 1 else None
