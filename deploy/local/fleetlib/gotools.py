"""Pinned Go tools from the Go module proxy: helm and kubeconform (checking the deploy files, with KEDA's CRDs),
Sigstore's timestamp-server (the local RFC 3161 timestamp authority, fleetlib.tsa), Open Policy Agent
(the control plane's policy decisions, fleetlib.opa) and Dex (the OpenID Connect provider the console's
sign-in tests run against, tests/support/dex.py).

`go install` builds into .data/bin. Go's module and build caches are the user's (`MOE_GO_CACHE`, default
~/.cache/moe-fleet/go; both are content-addressed and safe to share), so a second run, a rebuild after a
version bump or another checkout on the same machine (a git worktree, a fresh clone for CI) costs seconds,
not the ~10 CPU-minutes of building these tools anew. A `<tool>.version` file beside each binary records
what was built; nothing is rebuilt while it matches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from . import config

BIN = config.DATA / "bin"
GOPATH = config.DATA / "go"  # Dex's source build
CACHE = Path(os.environ.get("MOE_GO_CACHE") or Path.home() / ".cache" / "moe-fleet" / "go")
MODCACHE = CACHE / "mod"
# tool -> (package, version)
TOOLS: dict[str, tuple[str, str]] = {
    "helm": ("helm.sh/helm/v3/cmd/helm", "v3.21.4"),
    "kubeconform": ("github.com/yannh/kubeconform/cmd/kubeconform", "v0.7.0"),
    "timestamp-server": ("github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server", "v2.1.3"),
    # Open Policy Agent: the control plane's write decisions over policy/opa/*.rego (fleetlib.opa)
    "opa": ("github.com/open-policy-agent/opa", "v1.22.2"),
    # the witness of the audit checkpoints (c2sp.org/tlog-witness; fleetlib.witness); the module has no tags
    "omniwitness": ("github.com/transparency-dev/witness/cmd/omniwitness", "v0.0.0-20260720115447-2e1c6971d19e"),
}
# Tools `go install pkg@version` cannot build, built from their module's source instead: Dex's v2 tags are not
# Go-module versions (its module path has no /v2), so the proxy serves a tag by its commit's pseudo-version,
# and its go.mod replaces its api/v2 module with a local directory the module zip does not carry (the replace
# is dropped: the published api/v2 version it requires is used). Built without cgo (no SQLite storage; the
# tests use in-memory storage). tool -> (module, pseudo-version, package, the tag it is, replaces to drop)
SOURCE_BUILT: dict[str, tuple[str, str, str, str, tuple[str, ...]]] = {
    "dex": ("github.com/dexidp/dex", "v0.0.0-20260303133905-11d2eeb52b42", "./cmd/dex", "v2.45.1",
            ("github.com/dexidp/dex/api/v2",)),
}
# Modules only downloaded (not built): KEDA's CRDs give the ScaledObject schema for kubeconform.
KEDA_MODULE = ("github.com/kedacore/keda/v2", "v2.18.1")
# its example/prometheus-operator-crd holds the ServiceMonitor and PrometheusRule CRDs (the newest version the proxy
# serves of the module itself)
PROMETHEUS_OPERATOR_MODULE = ("github.com/prometheus-operator/prometheus-operator", "v0.85.0")


class GoToolError(RuntimeError):
    pass


def go_env() -> dict[str, str]:
    return {**os.environ, "GOBIN": str(BIN), "GOPATH": str(GOPATH), "GOMODCACHE": str(MODCACHE),
            "GOCACHE": str(CACHE / "build"), "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local"}


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if go is None:
        raise GoToolError("go not found (needed to build helm, kubeconform, timestamp-server and opa): "
                          "install Go >= 1.26")
    return go


def _run(argv: list[str], cgo: bool = True) -> str:
    env = go_env() if cgo else {**go_env(), "CGO_ENABLED": "0"}
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-20:])
        raise GoToolError(f"{' '.join(argv)} failed (exit {res.returncode}):\n{tail}")
    return res.stdout


def binary(tool: str) -> Path:
    return BIN / tool


def _version(tool: str) -> str:
    return TOOLS[tool][1] if tool in TOOLS else f"{SOURCE_BUILT[tool][3]} ({SOURCE_BUILT[tool][1]})"


def installed(tool: str) -> bool:
    marker = BIN / f"{tool}.version"
    return binary(tool).is_file() and marker.is_file() and marker.read_text().strip() == _version(tool)


def ensure_tool(tool: str) -> bool:
    """Build `tool` at its pinned version unless it is there; True if it was built."""
    if installed(tool):
        return False
    package, version = TOOLS[tool]
    print(f"install: go install {package}@{version} (Go's caches under {CACHE}) ...", flush=True)
    BIN.mkdir(parents=True, exist_ok=True)
    _run([_go(), "install", f"{package}@{version}"])
    (BIN / f"{tool}.version").write_text(version + "\n")
    return True


def ensure_source_built(tool: str) -> bool:
    """Build `tool` from its module's source at the pinned version unless it is there; True if it was built."""
    if installed(tool):
        return False
    module, version, package, tag, drop = SOURCE_BUILT[tool]
    print(f"install: building {tool} {tag} from {module}@{version} (Go's caches under {CACHE}) ...", flush=True)
    info = json.loads(_run([_go(), "mod", "download", "-json", f"{module}@{version}"]))
    work = GOPATH / "src-build" / tool
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(info["Dir"], work)
    for path in [work, *work.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
    for replaced in drop:
        _run([_go(), "-C", str(work), "mod", "edit", f"-dropreplace={replaced}"])
        _run([_go(), "-C", str(work), "mod", "download", replaced])  # the required version, with its go.sum lines
    BIN.mkdir(parents=True, exist_ok=True)
    _run([_go(), "-C", str(work), "build", "-trimpath", "-o", str(binary(tool)), package], cgo=False)
    (BIN / f"{tool}.version").write_text(_version(tool) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return True


def keda_module_dir() -> Path:
    """The KEDA module's source tree in the module cache (downloaded once, ~2.5 MB)."""
    return _module_dir(KEDA_MODULE, "config/crd/bases")


def prometheus_operator_module_dir() -> Path:
    """The Prometheus Operator module's source tree in the module cache (downloaded once)."""
    return _module_dir(PROMETHEUS_OPERATOR_MODULE, "example/prometheus-operator-crd")


def _module_dir(pinned: tuple[str, str], inside: str) -> Path:
    module, version = pinned
    path = MODCACHE / f"{module}@{version}"
    if not (path / inside).is_dir():
        info = json.loads(_run([_go(), "mod", "download", "-json", f"{module}@{version}"]))
        path = Path(info["Dir"])
    return path


def ensure() -> None:
    for tool in TOOLS:
        ensure_tool(tool)
    for tool in SOURCE_BUILT:
        ensure_source_built(tool)
    keda_module_dir()
    prometheus_operator_module_dir()
