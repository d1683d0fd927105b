"""Whether two unit names are convertible, checked with pint before the preflight routes a conversion
(so "convert 3 apples to pears" goes to the planner instead of failing in the tool)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from moe_core.contracts.tools import normalise_unit


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint  # about half a second, once, on the first conversion-shaped question

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


@lru_cache(maxsize=1024)
def units_convertible(source: str, target: str) -> bool:
    names = normalise_unit(source), normalise_unit(target)
    if names[0] is None or names[1] is None:
        return False
    registry = _registry()
    try:
        first, second = registry.parse_units(names[0]), registry.parse_units(names[1])
        return bool(first.is_compatible_with(second)) and first.dimensionality and True
    except Exception:  # pint raises many types for text that is not a unit: not convertible, that is all
        return False
