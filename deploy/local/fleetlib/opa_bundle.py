"""OPA on the control plane's signed policy bundle in the local fleet: on by default (MOE_OPA_BUNDLE=false in the
environment or .data/fleet.env puts OPA back on watching policy/opa; the tests' session does, tests/conftest.py).

`fleetctl up` generates once an RSA key pair in .data/opa-bundle/: the private key (0600, the control plane's
OS user's) goes to the control plane alone (MOE_OPA_BUNDLE_SIGNING_KEY), OPA gets the public key in its config
(moe_core.policy.bundle.opa_config: it long-polls (5 s) GET /v1/opa/bundles/policies.tar.gz of the local control
plane and keeps the last bundle in .data/opa/bundle-persist, from which it starts again before the control plane
answers).
OPA is never without policy: before its first start (no bundle kept yet, or a new key pair) the fleet tool signs a
first bundle of policy/opa and policy/opa-system with the key, as the control plane would with no egress change
approved, and puts it where OPA keeps its last one (seed): OPA starts from it, its first decision already under the
signed bundle, and takes the control plane's as soon as that answers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import config

POLICY_DIR = config.REPO / "policy" / "opa"
SYSTEM_DIR = config.REPO / "policy" / "opa-system"
KEY_DIR = config.DATA / "opa-bundle"
PRIVATE = KEY_DIR / "bundle-signing-key.pem"
PUBLIC = KEY_DIR / "bundle-public-key.pem"
CONFIG = config.DATA / "opa" / "opa-config.json"  # OPA's, beside its other files
PERSIST = config.DATA / "opa" / "bundle-persist"  # the last bundle OPA loaded
SWITCH = "MOE_OPA_BUNDLE"
LONG_POLL_S = 5  # how long OPA asks the control plane to hold its poll while nothing changed (bundle_server's most)


def enabled() -> bool:
    """On unless MOE_OPA_BUNDLE (environment, else .data/fleet.env) says false/0/no/off."""
    value = os.environ.get(SWITCH, config.read_env_file().get(SWITCH, ""))
    return value.strip().lower() not in ("0", "false", "no", "off")


def ensure_keys() -> tuple[Path, Path]:
    """The RSA key pair (PRIVATE, PUBLIC), generated when the private key is missing (never replaced here)."""
    private, public = PRIVATE, PUBLIC
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not private.is_file():
        persisted().unlink(missing_ok=True)  # signed with a key OPA no longer verifies: seed() signs a new one
        private.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        partial = private.with_name(private.name + ".partial")
        partial.touch(mode=0o600)
        partial.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        partial.rename(private)
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def persisted() -> Path:
    """Where OPA keeps (and starts from) the last bundle it loaded: <persistence_directory>/bundles/<name>/."""
    from moe_core.policy.bundle import NAME

    return PERSIST / "bundles" / NAME / "bundle.tar.gz"


def first_modules() -> list[tuple[str, bytes]]:
    """What the control plane's bundle holds with no egress change approved: policy/opa's and policy/opa-system's
    Rego files (their *_test.rego left out), as control_plane.policy.bundle_server.bundle_modules reads them."""
    return [(p.name, p.read_bytes()) for folder in (POLICY_DIR, SYSTEM_DIR) if folder.is_dir()
            for p in sorted(folder.glob("*.rego")) if not p.name.endswith("_test.rego")]


def seed() -> bool:
    """Put a first signed bundle where OPA starts from, unless it keeps one (the last it loaded: kept, it may hold an
    approved egress change). True when written."""
    private, _ = ensure_keys()
    target = persisted()
    if target.is_file():
        return False
    from moe_core.policy.bundle import signed_bundle

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(".seed.partial")  # renamed at once: OPA never reads half of it
    partial.write_bytes(signed_bundle(first_modules(), private.read_bytes()))
    partial.rename(target)
    return True


def config_file() -> Path:
    """OPA's config (written each start: the control plane's port may change), its key pair ensured and a first
    bundle seeded."""
    from moe_core.policy.bundle import opa_config

    _, public = ensure_keys()
    seed()  # PERSIST and CONFIG's folder too
    body = opa_config(f"http://{config.HOST}:{config.port('control-plane')}", public.read_text(), token=False,
                      persist_dir=str(PERSIST), long_poll_s=LONG_POLL_S)
    CONFIG.write_text(json.dumps(body, indent=1))
    return CONFIG


def opa_holds_bundle() -> bool | None:
    """Whether the running OPA holds a bundle (None: it does not answer). One started with MOE_OPA_BUNDLE=false (a
    test session's) watches the files, and a running OPA is reused as it was started."""
    import httpx

    try:
        resp = httpx.get(f"http://{config.HOST}:{config.port('opa')}/v1/data/system/bundles", timeout=3)
        return bool(resp.json().get("result")) if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def control_plane_env() -> dict[str, str]:
    """What the control plane gets when the bundle is on: the signing key; none while the running OPA watches the
    files (an approval would wait for a bundle that OPA never polls: it puts the module as before)."""
    if not enabled():
        return {}
    if opa_holds_bundle() is False:
        print("fleetctl: OPA runs watching policy/opa (started with MOE_OPA_BUNDLE=false, e.g. by a test session): "
              "the control plane gets no bundle signing key; `fleetctl down opa` then `fleetctl up` puts OPA on the "
              "signed bundle", file=sys.stderr)
        return {}
    return {"MOE_OPA_BUNDLE_SIGNING_KEY": str(ensure_keys()[0])}
