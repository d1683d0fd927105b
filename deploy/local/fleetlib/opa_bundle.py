"""OPA on the control plane's signed policy bundle in the local fleet: opt-in (MOE_OPA_BUNDLE=true in the
environment or .data/fleet.env), off by default because the shared infrastructure's OPA serves every test's
decisions while no control plane runs (tests start fleets of their own), and a bundle comes from a control plane.

On, `fleetctl up` generates once an RSA key pair in .data/opa-bundle/: the private key (0600, the control plane's
OS user's) goes to the control plane alone (MOE_OPA_BUNDLE_SIGNING_KEY), OPA gets the public key in its config
(moe_core.policy.bundle.opa_config: it polls GET /v1/opa/bundles/policies.tar.gz of the local control plane and keeps
the last bundle in .data/opa/bundle-persist, from which it starts again before the control plane answers). The very
first start has no bundle until the control plane serves one: a service that decides at start (the planner) may
fail to start then; `fleetctl up` once more starts it (docs/security.md, "Under the signed bundle")."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import config

KEY_DIR = config.DATA / "opa-bundle"
PRIVATE = KEY_DIR / "bundle-signing-key.pem"
PUBLIC = KEY_DIR / "bundle-public-key.pem"
CONFIG = config.DATA / "opa" / "opa-config.json"  # OPA's, beside its other files
PERSIST = config.DATA / "opa" / "bundle-persist"  # the last bundle OPA loaded
SWITCH = "MOE_OPA_BUNDLE"


def enabled() -> bool:
    value = os.environ.get(SWITCH, config.read_env_file().get(SWITCH, ""))
    return value.strip().lower() in ("1", "true", "yes", "on")


def ensure_keys() -> tuple[Path, Path]:
    """The RSA key pair (PRIVATE, PUBLIC), generated when the private key is missing (never replaced here)."""
    private, public = PRIVATE, PUBLIC
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not private.is_file():
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


def config_file() -> Path:
    """OPA's config (written each start: the control plane's port may change), its key pair ensured."""
    from moe_core.policy.bundle import opa_config

    _, public = ensure_keys()
    PERSIST.mkdir(parents=True, exist_ok=True)  # CONFIG's folder too
    body = opa_config(f"http://{config.HOST}:{config.port('control-plane')}", public.read_text(), token=False,
                      persist_dir=str(PERSIST))
    CONFIG.write_text(json.dumps(body, indent=1))
    return CONFIG


def control_plane_env() -> dict[str, str]:
    """What the control plane gets when the bundle is on: the signing key."""
    return {"MOE_OPA_BUNDLE_SIGNING_KEY": str(ensure_keys()[0])} if enabled() else {}
