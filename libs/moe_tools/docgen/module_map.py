"""The module map of docs/architecture.md: every package of libs/ and of the services, in the layers `make lint`
enforces (moe_tools.docgen.deploy_lists.LAYERS), with the first sentence of its face (its `__init__` docstring)
and its modules, read from the source tree (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_tools.docgen.deploy_lists import LAYERS

_LIBS = ("moe_core", "moe_tools", "moe_audit_verify")


def _face(folder: Path) -> str:
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    first = " ".join(doc.split())
    cut = first.find(". ")
    return (first[:cut + 1] if cut >= 0 else first).replace("|", "\\|")


def _modules(folder: Path) -> str:
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__"))
    subs = sorted(p.name + "/" for p in folder.iterdir() if (p / "__init__.py").is_file())
    return ", ".join(f"`{n}`" for n in [*subs, *names])


def _packages(root: Path, top: str) -> list[tuple[str, Path]]:
    found = [(top, root)]
    for init in sorted(root.rglob("__init__.py")):
        if init.parent != root and "__pycache__" not in init.parts:
            found.append((top + "." + ".".join(init.parent.relative_to(root).parts), init.parent))
    return found


def _layer(name: str) -> str:
    for rank, layer in enumerate(LAYERS):
        if any(name == part or name.startswith(part + ".") for part in layer.split(" | ")):
            return f"{rank + 1}: " + layer.removeprefix("moe_core.").replace(" | moe_core.", " \\| ")
    return "services" if name.split(".")[0] in {s.package for s in stage_registry.FLEET} else "apart"


def table(repo: Path) -> str:
    rows = ["| package | layer | what it is | modules |", "|---|---|---|---|"]
    tops = [(lib, repo / "libs" / lib) for lib in _LIBS]
    tops += [(s.package, repo / "services" / s.name / s.package) for s in stage_registry.FLEET]
    for top, root in tops:
        for name, folder in _packages(root, top):
            if name == "moe_core":
                continue
            rows.append(f"| `{name}` | {_layer(name)} | {_face(folder)} | {_modules(folder)} |")
    return "\n".join(rows)
