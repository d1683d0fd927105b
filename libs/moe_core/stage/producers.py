"""The producers' keys, generated from the stage declarations: one Ed25519 key pair per service of the registry
(moe_core.stage.registry), the private key delivered to that service alone (MOE_PRODUCER_SIGNING_KEY, like its Kafka
credentials), and one list of the public keys with the topics each service may publish on (its declaration's
`publishes`, and the dead-letter topic every consumer writes to): MOE_PRODUCER_KEYS, read by the consumers that
check who produced a message (moe_core.runtime.producer_signing).

    python -m moe_core.stage.producers DIR          # DIR/<service>.pem (0600, kept if present), DIR/producer-keys.json

Re-running keeps every existing key and rewrites the list (a service added since gets its key; a changed
declaration its topics). A key is replaced by deleting its file and running it again (docs/audit.md#key-rotation).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import moe_core.stage.registry as stage_registry
from moe_core.runtime.producer_signing import KEYS_FORMAT, ProducerSigner, key_id

LIST = "producer-keys.json"
IMPLICIT = ("deadletter",)  # every consumer dead-letters what it cannot process (moe_core.runtime.bus)


def declared_publishes() -> dict[str, tuple[str, ...]]:
    """service -> the topic kinds it may publish on, from its declaration."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in stage_registry.FLEET:
        declared = entry.declaration()
        publishes = tuple(declared.publishes) if declared is not None else ()
        out[entry.name] = tuple(dict.fromkeys((*publishes, *IMPLICIT)))
    return out


def key_file(folder: Path, service: str) -> Path:
    return folder / f"{service}.pem"


def _ensure_key(path: Path) -> Ed25519PrivateKey:
    if not path.is_file():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.replace(path.with_suffix(".tmp"), path)
    path.chmod(0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return key


def generate(folder: Path, services: dict[str, tuple[str, ...]] | None = None) -> Path:
    """Every service's key in `folder` (made when missing) and the list of their public keys; the list's path."""
    folder.mkdir(parents=True, exist_ok=True)
    producers = {}
    for service, publishes in (services or declared_publishes()).items():
        public = _ensure_key(key_file(folder, service)).public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        producers[service] = {"key": base64.b64encode(raw).decode(), "key_id": key_id(public),
                              "publishes": list(publishes)}
    listing = folder / LIST
    tmp = listing.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": KEYS_FORMAT, "producers": producers}, indent=1, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, listing)
    return listing


def signer(folder: Path, service: str) -> ProducerSigner:
    """Service `service`'s signer from a generated folder (what a test plays a stage with)."""
    return ProducerSigner.from_file(str(key_file(folder, service)), service)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m moe_core.stage.producers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    print(generate(args.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
