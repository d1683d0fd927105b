"""Units with kinds (unit_kinds.yaml): the same dimension is not the same quantity. Torque (N*m) is no energy (J),
a gray no sievert, a volt-ampere no watt, a hertz no becquerel: pint converts each into the other, so the
unit_convert contract refuses a conversion between kinds (the mcp tool), and the planner's preflight hands such a
question to the planner instead of answering it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent


@lru_cache(maxsize=1)
def signatures() -> dict[tuple[str, ...], str]:
    """Each signature (sorted unit names, exponents as repeats) -> its kind."""
    data = yaml.safe_load((HERE / "unit_kinds.yaml").read_text(encoding="utf-8"))
    return {tuple(sorted(names)): kind for kind, entries in data["kinds"].items() for names in entries}


def kind(unit: Any, registry: Any) -> str | None:
    """The kind of a parsed pint unit, or None. Prefixes are dropped ("kilowatt" is a watt); a unit name pint
    cannot split is taken as written."""
    names: list[str] = []
    for name, power in dict(unit._units).items():
        if power != int(power) or power < 1:
            return None  # an inverse or a root: no kind of this table
        parsed = registry.parse_unit_name(name)
        base = parsed[0][1] if parsed else name
        names += [base] * int(power)
    return signatures().get(tuple(sorted(names)))


def same_kind(first: Any, second: Any, registry: Any) -> bool:
    """True when a conversion keeps the kind: both units of the same kind, or neither of any kind."""
    return kind(first, registry) == kind(second, registry)
