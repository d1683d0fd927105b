"""A signed OPA bundle of Rego modules, built without the `opa` binary (issue 52: the design that ends the version
read per decision, docs/performance-history.md "signed bundles"). Its revision is the version of its modules as the
policy client names it (`version_of`: "sha256:" over their names and texts, OPA's own API authorization left
out), its manifest owns every path (roots
[""]: OPA then refuses `PUT /v1/policies` and data writes, so only a bundle signed with the key changes what
decides), and `.signatures.json` is `opa build --signing-key`'s format: an RS256 JWT listing each file with the
SHA-256 of its bytes (a module) or of its canonical JSON (the manifest). OPA loads it with `--bundle
--verification-key <public key>` and refuses it when a file differs from what was signed; a decision asked with
`?provenance=true` names its revision (`provenance.bundles.<name>.revision`), read in the decision's own transaction.

The control plane signs and serves it (control_plane.policy.bundle_server, with MOE_OPA_BUNDLE_SIGNING_KEY)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

import jwt

from moe_core.policy.opa import SYSTEM_PACKAGE, version_of

MANIFEST = ".manifest"
SIGNATURES = ".signatures.json"
NAME = "policies"  # the bundle's name in OPA's config (bundles.policies) and its resource
KEY_ID = "default"  # what `opa run --verification-key` expects unless --verification-key-id says otherwise


def canonical(value: Any) -> bytes:
    """JSON as OPA hashes a structured file: keys sorted, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bundle(modules: Iterable[tuple[str, bytes]], private_key_pem: bytes, key_id: str = KEY_ID,
                  roots: tuple[str, ...] = ("",)) -> bytes:
    """A .tar.gz bundle of `modules` (file name, Rego text), its revision their version, signed with the RSA key.
    `roots`: the paths it owns (every path by default; a client trusts the revision of no other bundle)."""
    items = sorted((PurePosixPath(name).name, text) for name, text in modules)
    decisions = [(name, text) for name, text in items if not SYSTEM_PACKAGE.search(text.decode())]
    manifest = {"revision": version_of(decisions).digest, "roots": list(roots)}  # OPA's own authz is not in the version
    files = [{"name": MANIFEST, "hash": hashlib.sha256(canonical(manifest)).hexdigest(), "algorithm": "SHA-256"}]
    files += [{"name": name, "hash": hashlib.sha256(text).hexdigest(), "algorithm": "SHA-256"} for name, text in items]
    token = jwt.encode({"files": files, "keyid": key_id}, private_key_pem, algorithm="RS256", headers={"kid": key_id})
    out = io.BytesIO()
    # gzip without a time in its header: the same modules and key give the same bytes on every replica
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        for name, content in [(MANIFEST, canonical(manifest)), *items,
                              (SIGNATURES, canonical({"signatures": [token]}))]:
            info = tarfile.TarInfo(f"/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def opa_config(control_plane_url: str, public_key_pem: str, token: bool, min_delay_s: int = 1,
               max_delay_s: int = 5, persist_dir: str = "", long_poll_s: int = 0) -> dict[str, Any]:
    """OPA's configuration (`opa run --config-file`) that polls the control plane's bundle
    (`GET <url>/v1/opa/bundles/policies.tar.gz`) and verifies it with the public key (RS256, key id "default");
    with `token`, OPA sends its own MOE_OPA_TOKEN (substituted by OPA from its environment); with `persist_dir`,
    OPA keeps the last bundle there and starts from it (before the control plane answers); with `long_poll_s`, OPA
    asks the control plane to hold its poll that long while the bundle is unchanged (`Prefer: wait=`, answered at
    once on a change: control_plane.policy.bundle_server), the delays then only after an error."""
    service: dict[str, Any] = {"url": f"{control_plane_url.rstrip('/')}/v1/opa"}
    if token:
        service["credentials"] = {"bearer": {"token": "${MOE_OPA_TOKEN}"}}
    polling: dict[str, Any] = {"min_delay_seconds": min_delay_s, "max_delay_seconds": max_delay_s}
    if long_poll_s:
        polling["long_polling_timeout_seconds"] = long_poll_s
    bundle: dict[str, Any] = {"service": "control-plane", "resource": f"bundles/{NAME}.tar.gz", "polling": polling,
                              "signing": {"keyid": KEY_ID}, "persist": bool(persist_dir)}
    config: dict[str, Any] = {"services": {"control-plane": service}, "bundles": {NAME: bundle},
                              "keys": {KEY_ID: {"algorithm": "RS256", "key": public_key_pem}}}
    if persist_dir:
        config["persistence_directory"] = persist_dir
    return config
