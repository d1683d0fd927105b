"""Pinned Go tools from the Go module proxy: helm and kubeconform (checking the deploy files, with KEDA's CRDs)
Sigstore's timestamp-server (the local RFC 3161 timestamp authority, fleetlib.tsa) and Open Policy Agent
(the control plane's policy decisions, fleetlib.opa).

`go install` builds into .data/bin with its module and build caches under .data/go, so a second run
(or a rebuild after a version bump) costs seconds, not minutes. A `<tool>.version` file beside each
binary records what was built; nothing is rebuilt while it matches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from . import config

BIN = config.DATA / "bin"
GOPATH = config.DATA / "go"
# tool -> (package, version)
TOOLS: dict[str, tuple[str, str]] = {
    "helm": ("helm.sh/helm/v3/cmd/helm", "v3.21.4"),
    "kubeconform": ("github.com/yannh/kubeconform/cmd/kubeconform", "v0.7.0"),
    "timestamp-server": ("github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server", "v2.1.3"),
    # Open Policy Agent: the control plane's write decisions over policy/opa/*.rego (fleetlib.opa)
    "opa": ("github.com/open-policy-agent/opa", "v1.22.2"),
}
# Modules only downloaded (not built): KEDA's CRDs give the ScaledObject schema for kubeconform.
KEDA_MODULE = ("github.com/kedacore/keda/v2", "v2.18.1")


class GoToolError(RuntimeError):
    pass


def go_env() -> dict[str, str]:
    return {**os.environ, "GOBIN": str(BIN), "GOPATH": str(GOPATH), "GOMODCACHE": str(GOPATH / "pkg" / "mod"),
            "GOCACHE": str(GOPATH / "cache"), "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local"}


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if go is None:
        raise GoToolError("go not found (needed to build helm, kubeconform, timestamp-server and opa): "
                          "install Go >= 1.26")
    return go


def _run(argv: list[str]) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, env=go_env(), check=False)  # noqa: S603
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-20:])
        raise GoToolError(f"{' '.join(argv)} failed (exit {res.returncode}):\n{tail}")
    return res.stdout


def binary(tool: str) -> Path:
    return BIN / tool


def installed(tool: str) -> bool:
    marker = BIN / f"{tool}.version"
    return binary(tool).is_file() and marker.is_file() and marker.read_text().strip() == TOOLS[tool][1]


def ensure_tool(tool: str) -> bool:
    """Build `tool` at its pinned version unless it is there; True if it was built."""
    if installed(tool):
        return False
    package, version = TOOLS[tool]
    print(f"install: go install {package}@{version} (cached under {GOPATH}) ...", flush=True)
    BIN.mkdir(parents=True, exist_ok=True)
    _run([_go(), "install", f"{package}@{version}"])
    (BIN / f"{tool}.version").write_text(version + "\n")
    return True


def keda_module_dir() -> Path:
    """The KEDA module's source tree in the module cache (downloaded once, ~2.5 MB)."""
    module, version = KEDA_MODULE
    path = GOPATH / "pkg" / "mod" / f"{module}@{version}"
    if not (path / "config" / "crd" / "bases").is_dir():
        info = json.loads(_run([_go(), "mod", "download", "-json", f"{module}@{version}"]))
        path = Path(info["Dir"])
    return path


def ensure() -> None:
    for tool in TOOLS:
        ensure_tool(tool)
    keda_module_dir()
