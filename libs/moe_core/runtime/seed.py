"""The defaults of the system this fleet replaces (MoE Sovereign, /work/shared/seeds), row by row.

Each settings module declares, next to its settings, `SEED_DEFAULTS`: one `SeedDefault` per default the
original's documentation states that the module's settings (or constants) carry. The fleet takes the
original's value unless a measurement (or a structural difference it names) says otherwise; then the row
holds our value and why. `moe_tools.docgen.seed_doc` renders every row into docs/seed-defaults.md (`make
schemas`), and tests/deploy/test_seed_defaults.py fails when a default changes without its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A row's `ours` when the fleet's default is the original's.
SAME: Any = object()


@dataclass(frozen=True)
class SeedDefault:
    original: str  # the original's name for it (its variable, or what its docs call it)
    seed: str  # the original's value, as its docs state it
    setting: str  # our variable (MOE_...), or a constant as `module:NAME`
    value: Any  # the original's value in our setting's unit; None: not comparable (see why)
    ours: Any = SAME  # our default when it differs from `value`
    why: str = ""  # when it differs: the measurement or the structural reason
    doc: str = ""  # where the original states it (seed file: section)

    @property
    def expected(self) -> Any:
        """Our default as this row declares it."""
        return self.value if self.ours is SAME else self.ours

    @property
    def adopted(self) -> bool:
        return self.ours is SAME

    def problems(self) -> list[str]:
        """What is inconsistent in the row itself."""
        out = []
        if not self.adopted and not self.why:
            out.append(f"{self.setting}: differs from the original ({self.seed}) without saying why")
        if self.adopted and self.value is None:
            out.append(f"{self.setting}: a row without a comparable value must say what we do instead")
        return out


SEED_ARCHITECTURE = "001 (MoE Sovereign — System Architecture)"
SEED_SYSTEM = "002 (Sovereign MoE — System Documentation v2.1.0)"
SEED_ENTERPRISE = "003 (Enterprise Architecture Features)"
