"""The local supervisor's components (deploy/local/README.md), from deploy/local/fleetlib: the registry's
components in start order, their default ports and the variables that move them, readiness, deadline."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


def fleetlib(repo: Path, module: str) -> Any:
    """A fleetlib module (deploy/local is not a package on the path of the libraries)."""
    local = str((repo / "deploy" / "local").resolve())
    if local not in sys.path:
        sys.path.insert(0, local)
    return importlib.import_module(f"fleetlib.{module}")


def _addresses(config: Any, name: str) -> tuple[str, str]:
    """`host:port` of each of the component's ports (the first unlabelled), and their variables."""
    keys = [k for k in config.PORT_DEFAULTS if k == name or k.startswith(f"{name}-")]
    where, variables = [], []
    for key in keys:
        var, port = config.PORT_DEFAULTS[key]
        label = key.removeprefix(name).removeprefix("-")
        where.append(f"{label} `{config.HOST}:{port}`".strip())
        variables.append(f"`{var}`")
    return ", ".join(where), ", ".join(variables)


def components(repo: Path) -> str:
    config, registry = fleetlib(repo, "config"), fleetlib(repo, "registry")
    lines = ["| component | group | address (default) | moved by | ready when | deadline |",
             "|---|---|---|---|---|---|"]
    for c in registry.ALL:
        where, variables = _addresses(config, c.name)
        lines.append(f"| {c.name} | {c.group} | {where} | {variables} | {c.ready} | {c.deadline:g} s |")
    return "\n".join(lines)
