"""docs/settings.md: every setting of every service, its default and its meaning, from the code."""

from __future__ import annotations

from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_tools.docgen import settings_catalog
from moe_tools.docgen.settings_catalog import Setting


def _cell(text: str, code: bool = False) -> str:
    """Table-safe: a pipe would end the cell; in prose, a `<name>` would be taken for an HTML tag."""
    text = text.replace("|", "\\|")
    return text if code else text.replace("<", "&lt;")


def _variable(setting: Setting) -> str:
    first, *others = setting.env
    alias = f" (or {', '.join(f'`{o}`' for o in others)})" if others else ""
    return f"`{first}`{alias}"


def _table(settings: list[Setting]) -> list[str]:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {_variable(s)} | {_cell(settings_catalog.render_default(s.default), code=True)} | "
              f"{_cell(s.description)} |" for s in sorted(settings, key=lambda s: s.name)]
    return lines


def reference(repo: Path) -> str:
    lines = ["### Every service", "",
             "`moe_core.runtime.settings.FleetSettings`: infrastructure addresses and common behaviour.", ""]
    lines += _table(list(settings_catalog.fleet().values()))
    for entry in stage_registry.FLEET:
        settings = settings_catalog.specific(entry.name, repo)
        classes = sorted({s.declared_by for s in settings.values()})
        lines += ["", f"### {entry.name}", "",
                  f"Besides the common ones (declared in {', '.join(f'`{c}`' for c in classes)}):", ""]
        lines += _table(list(settings.values()))
    return "\n".join(lines)
