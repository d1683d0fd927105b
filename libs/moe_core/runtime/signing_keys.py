"""An Ed25519 private key read from a PEM file only its holder may read: the one check every signer of the fleet
makes at start (a producer's key, moe_core.runtime.producer_signing; codex-lineage's audit key,
moe_core.audit.signer). A group may read it (a Kubernetes Secret volume is root:fsGroup 0440), every user may not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def load_private_key(path: str | os.PathLike[str], error: type[Exception], *, missing: str,
                     holder: str) -> Ed25519PrivateKey:
    """The key at `path`, or `error` saying why not: `missing` when there is no such file, else that every user may
    access it (only `holder` may), that `holder`'s user cannot read it, that it is not PEM or not Ed25519."""
    file = Path(path)
    if not str(path) or not file.is_file():
        raise error(missing)
    if file.stat().st_mode & stat.S_IRWXO:
        raise error(f"{file} is accessible to every user: chmod 600 it (only {holder} may hold it)")
    try:
        key = load_pem_private_key(file.read_bytes(), password=None)
    except OSError as exc:
        raise error(f"{file} cannot be read by {holder}'s user: {exc.strerror}") from None
    except ValueError as exc:
        raise error(f"{file}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise error(f"{file}: not an Ed25519 key")
    return key
