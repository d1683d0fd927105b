"""Shared helpers of the deploy-file tests: paths, the fleet's services, YAML, helm (built by the install step)."""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import moe_core.stage.registry as stage_registry

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
CHART = REPO / "helm" / "moe-fleet"
EXAMPLES = REPO / "helm" / "examples"
GRAFANA = REPO / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
KUBERNETES_VERSION = "1.33.0"
sys.path.insert(0, str(REPO / "deploy" / "local"))
from fleetlib import gotools  # noqa: E402

# The fleet: name -> (python module, HTTP port). One name everywhere.
SERVICES: dict[str, tuple[str, int]] = {s.name: (s.package, s.port) for s in stage_registry.FLEET}
# Values profiles: the chart's defaults and every file of ci/ on top (what CI renders and validates).
PROFILES: dict[str, list[str]] = {
    "default": [],
    **{p.stem: [f"ci/{p.name}"] for p in sorted((CHART / "ci").glob("*.yaml")) if p.name != "anchors-values.yaml"}}
# The audit anchors the chart requires (templates/_audit.tpl): every render here carries them, as every deployment must
ANCHORS = ["-f", str(CHART / "ci" / "anchors-values.yaml")]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def chart_values() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO, check=False, **kwargs)


def _tool(name: str) -> str:
    for candidate in (os.environ.get(name.upper()), str(gotools.binary(name)), shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError(f"{name} missing: `make install` (fleetctl install) builds it into {gotools.BIN}")


@functools.cache
def helm() -> str:
    return _tool("helm")


@functools.cache
def kubeconform() -> str:
    return _tool("kubeconform")


def helm_template(values_files: list[str], sets: list[str] | None = None) -> str:
    cmd = [helm(), "template", "moe", str(CHART), "--namespace", "moe", *ANCHORS]
    for f in values_files:
        cmd += ["-f", str(CHART / f)]
    for kv in sets or []:
        cmd += ["--set", kv]
    result = run(cmd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rendered_docs(values_files: list[str], sets: list[str] | None = None) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(helm_template(values_files, sets)) if d]


def fleet_topics() -> list[str]:
    from moe_core.contracts.topics import Topics

    return list(Topics.for_namespace("moe").all())


def grafana_to_promql(expr: str, rate_interval: str = "5m") -> str:
    """A panel's query as Prometheus runs it: Grafana's interval variables, `$service` = every service."""
    for var, value in (("$__rate_interval", rate_interval), ("$__interval", "1m"), ("$__range", "1h")):
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?service\}?", ".*", expr)


def compose_secrets() -> dict[str, str]:
    """Every secret the compose files require (compose/init_secrets.py finds them by their message), with a test
    value: the environment `docker compose config` needs to render the model."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("init_secrets", COMPOSE / "init_secrets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = module.required_names(sorted(COMPOSE.glob("compose*.yaml")))
    return {name: f"test-{name.lower().replace('_', '-')}" for name in names}
