"""The seed's variable names against the fleet's (docs/seed-defaults.md, section seed-variables), and the list of
every variable the fleet reads (libs/moe_core/runtime/fleet_variables.txt), which the services' start-up warns
against (moe_core.runtime.seed_env: an unknown MOE_* name)."""

from __future__ import annotations

import re
from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.runtime.seed_env import SEED_VARIABLES
from moe_tools.docgen import settings_catalog

# variables read outside the settings classes (os.environ, the local fleet's ports and paths), found in the code as
# the list is written: every quoted MOE_* name
_READ_DIRECTLY = re.compile(r"""["'](MOE_[A-Z0-9_]+)["']""")
_CODE = ("libs", "services", "deploy/local")


def table(repo: Path) -> str:
    lines = ["| the seed's variable | the fleet | how |", "|---|---|---|"]
    for v in SEED_VARIABLES:
        fleet = "refused at start" if v.refused else f"`{v.setting}`"
        how = (f"set instead: {v.how}" if v.refused else v.how).replace("|", "\\|")
        lines.append(f"| `{v.name}` | {fleet} | {how} |")
    return "\n".join(lines)


def variables(repo: Path) -> str:
    names = set(settings_catalog.every_variable(repo)) | {e.port_variable() for e in stage_registry.FLEET}
    for folder in _CODE:
        for path in sorted((repo / folder).rglob("*.py")):
            names.update(_READ_DIRECTLY.findall(path.read_text(encoding="utf-8")))
    return "\n".join(sorted(n for n in names if n.startswith("MOE_")))
