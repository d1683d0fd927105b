"""The anchors an auditor gives the verifier on its command line (keyring or public keys, the witness key), read
with a clear error; without them, the export's own copies, said so (cli, request_proof)."""

from __future__ import annotations

import argparse
from pathlib import Path

from moe_audit_verify.bundle import BundleError
from moe_audit_verify.keys import KeyRing, PublicKey
from moe_audit_verify.note import NoteKey


def witness_key(args: argparse.Namespace) -> NoteKey | None:
    if args.witness_key is None:
        return None
    try:
        return NoteKey.parse(args.witness_key.read_text())
    except OSError as exc:
        raise BundleError(f"witness key: cannot read {args.witness_key} ({exc.strerror})") from None


def read_anchor(given: Path | None, fallback: Path, what: str) -> tuple[bytes, str]:
    path = given or fallback
    try:
        return path.read_bytes(), ("given" if given else "the export's own copy: compare it with the published one")
    except OSError as exc:
        raise BundleError(f"{what}: cannot read {path} ({exc.strerror})") from None


def tsa_roots(given: list[Path], fallback: Path) -> tuple[bytes, str]:
    """The TSA chains to trust (--tsa-chain, repeated for a keyring of TSA roots: the old and the new authority's
    across a change of TSA), one PEM; none given: the export's own copy."""
    if not given:
        return read_anchor(None, fallback, "TSA chain")
    pems = [read_anchor(path, path, "TSA chain")[0] for path in given]
    return b"".join(pem if pem.endswith(b"\n") else pem + b"\n" for pem in pems), "given"


def trusted_keys(args: argparse.Namespace, folder: Path | None = None) -> tuple[KeyRing, str]:
    """The keys to trust: the given keyring and public keys; with neither, the export's keyring (or its key)."""
    folder = folder or args.export
    ring = KeyRing([])
    given = args.keyring or args.public_key
    keyring = args.keyring or (None if given or not (folder / "keyring.json").is_file()
                               else folder / "keyring.json")
    if keyring is not None:
        ring = KeyRing.from_json(read_anchor(keyring, keyring, "keyring")[0])
    pems = list(args.public_key) or ([] if keyring is not None else [folder / "public-key.pem"])
    for pem in pems:
        key = PublicKey.from_pem(read_anchor(pem, pem, "public key")[0])
        ring.keys.setdefault(key.id, key)
    return ring, "given" if given else "the export's own copy: compare it with the published one"
