"""docs/seed-defaults.md: the original's defaults beside ours, from the `SEED_DEFAULTS` rows the settings
modules declare (moe_core.runtime.seed), our defaults read from the code."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moe_core.stage.registry as stage_registry
from moe_core.runtime.seed import SeedDefault
from moe_tools.docgen import settings_catalog


@dataclass(frozen=True)
class Row:
    seed: SeedDefault
    declared_in: str  # the module whose SEED_DEFAULTS holds the row
    defaults: tuple[Any, ...]  # our default(s) of the setting, from the code; () = no such setting


def _modules(repo: Path) -> dict[str, list[str]]:
    """Module -> the services that read a settings class it defines (their own and the classes they build on)."""
    found: dict[str, list[str]] = {}
    for entry in stage_registry.FLEET:
        for cls in settings_catalog.settings_classes(repo / settings_catalog.SERVICES / entry.name / entry.package):
            for base in cls.__mro__:
                if base.__module__.startswith(("moe_core", entry.package)):
                    users = found.setdefault(base.__module__, [])
                    if entry.name not in users:
                        users.append(entry.name)
    return found


def _constant(ref: str) -> tuple[Any, ...]:
    module, _, name = ref.partition(":")
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return ()
    return (sorted(value) if isinstance(value, frozenset | set) else value,)


def _defaults(variable: str, services: list[str], repo: Path) -> tuple[Any, ...]:
    """The distinct defaults of a variable in the services whose settings module declares the row."""
    by_text: dict[str, Any] = {}
    for name in services:
        setting = settings_catalog.service(name, repo).get(variable)
        if setting is None:
            setting = next((s for s in settings_catalog.service(name, repo).values() if variable in s.env), None)
        if setting is not None:
            by_text.setdefault(settings_catalog.render_default(setting.default), setting.default)
    return tuple(by_text.values())


def rows(repo: Path = Path()) -> list[Row]:
    """Every declared row, in declaration order (modules in the fleet's order), with our defaults."""
    out: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for module, services in _modules(repo).items():
        for seed in getattr(importlib.import_module(module), "SEED_DEFAULTS", ()):
            if (seed.original, seed.setting) in seen:
                continue
            seen.add((seed.original, seed.setting))
            defaults = _constant(seed.setting) if ":" in seed.setting else _defaults(seed.setting, services, repo)
            out.append(Row(seed, module, defaults))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) | isinstance(b, bool):
        return float(a) == float(b)
    return bool(a == b)


def mismatches(found: list[Row]) -> list[str]:
    """Rows whose setting does not exist, whose declared default is not the code's, or that contradict
    themselves: what a default changed without its row (or a row without its default) looks like."""
    out: list[str] = []
    for row in found:
        s = row.seed
        out += s.problems()
        if not row.defaults:
            out.append(f"{s.setting} ({row.declared_in}): no such setting or constant")
        elif len(row.defaults) > 1:
            out.append(f"{s.setting}: the services disagree on its default {row.defaults}")
        elif not _same(row.defaults[0], s.expected):
            out.append(f"{s.setting}: the code's default is {row.defaults[0]!r}, its row ({row.declared_in}) "
                       f"says {s.expected!r} ({'the original' if s.adopted else 'ours'}): change both together")
        elif not s.adopted and s.value is not None and _same(s.value, s.expected):
            out.append(f"{s.setting}: the row says we differ from the original but both are {s.value!r}")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def _ours(row: Row) -> str:
    if not row.defaults:
        return "(missing)"
    return " / ".join(settings_catalog.render_default(d) for d in row.defaults)


def _setting(ref: str) -> str:
    return f"`{ref}`" if ":" not in ref else f"`{ref.replace(':', '.')}` (constant)"


def table(repo: Path) -> str:
    lines = ["| the original | its default | our default | setting | why |", "|---|---|---|---|---|"]
    for row in rows(repo):
        s = row.seed
        why = "the original's" if s.adopted else s.why
        lines.append(f"| {_cell(s.original)} | {_cell(s.seed)} | {_ours(row)} | {_setting(s.setting)} | "
                     f"{_cell(why)} |")
    return "\n".join(lines)
