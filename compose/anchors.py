"""The audit record's anchors for the compose deployment (docs/deploy.md#6-the-audit-anchors), made once by
compose/init_secrets.py with stdlib and openssl only (it runs before any image exists):

  audit-public-key.pem, audit-keyring.json   codex-lineage's public key and keyring (public: the control plane
                                             verifies with them; give your auditors their own copy)
  tsa-key.pem (0600), tsa-chain.pem          the timestamp authority's ECDSA key and its chain (a timestamping
                                             certificate with the critical timeStamping EKU under a root of its own)
  witness.key (0600), witness.vkey           the witness's Ed25519 key in the note formats (c2sp.org/signed-note)

Nothing is replaced once made (old timestamps, cosignatures and signatures must keep verifying). Each private key
is owned by the uid its own container runs as (compose.yaml's `user:`), readable by nobody else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

CODEX_LINEAGE_UID, TSA_UID, WITNESS_UID = 10001, 10002, 10003  # compose.yaml's users (the fleet image's: 10001)
WITNESS_NAME = "moe-fleet.compose/witness"
KEYRING_FORMAT = "moe-audit-keyring/1"  # moe_audit_verify.keys


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout  # noqa: S603,S607


def _private(path: Path, data: bytes, uid: int) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    _own(path, uid)


def _own(path: Path, uid: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, uid)


def raw_ed25519(private_pem: bytes) -> tuple[bytes, bytes]:
    """(seed, public key) of an Ed25519 PEM key: the last 32 bytes of its PKCS#8 and of its SPKI DER."""
    der = _openssl("pkey", "-outform", "DER", data=private_pem)
    public = _openssl("pkey", "-pubout", "-outform", "DER", data=private_pem)
    return der[-32:], public[-32:]


def audit_public(signing_key: Path, out: Path) -> str:
    """codex-lineage's public key and a keyring holding it (its id: SHA-256 of the raw key, 16 hex digits)."""
    pem = signing_key.read_bytes()
    public_pem = _openssl("pkey", "-pubout", data=pem)
    key_id = hashlib.sha256(raw_ed25519(pem)[1]).hexdigest()[:16]
    if not (out / "audit-public-key.pem").exists():
        (out / "audit-public-key.pem").write_bytes(public_pem)
    if not (out / "audit-keyring.json").exists():  # kept: after a rotation it holds the retired keys too
        key = {"id": key_id, "public_key": public_pem.decode(), "retired_at": None}
        ring = {"format": KEYRING_FORMAT, "keys": [key]}
        (out / "audit-keyring.json").write_text(json.dumps(ring, indent=1) + "\n")
    return key_id


def witness(out: Path) -> bool:
    """The witness's key: `PRIVATE+KEY+<name>+<hash>+<base64(0x04 seed)>`, and the vkey `<name>+<hash>+<base64(0x04
    public)>` (hash: the first 4 bytes of SHA-256(name, newline, 0x04 public))."""
    if (out / "witness.key").exists() and (out / "witness.vkey").exists():
        return False
    seed, public = raw_ed25519(_openssl("genpkey", "-algorithm", "ed25519"))
    tagged = bytes([4]) + public
    key_hash = hashlib.sha256(WITNESS_NAME.encode() + b"\n" + tagged).digest()[:4].hex()
    _private(out / "witness.key",
             f"PRIVATE+KEY+{WITNESS_NAME}+{key_hash}+{base64.b64encode(bytes([4]) + seed).decode()}\n".encode(),
             WITNESS_UID)
    (out / "witness.vkey").write_text(f"{WITNESS_NAME}+{key_hash}+{base64.b64encode(tagged).decode()}\n")
    return True


ROOT_EXT = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=critical,timeStamping\n")


def tsa(out: Path) -> bool:
    """The timestamp authority's key (ECDSA P-256) and chain (leaf, then its root; ten years)."""
    if (out / "tsa-key.pem").exists() and (out / "tsa-chain.pem").exists():
        return False
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "root.ext").write_text(ROOT_EXT)
        (t / "leaf.ext").write_text(LEAF_EXT)
        subj = "/O=MoE Sovereign Fleet (compose)/CN="
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650",
                 "-subj", subj + "compose TSA root", "-keyout", str(t / "root.key"), "-out", str(t / "root.pem"),
                 "-extensions", "v3", "-config", _req_config(t, ROOT_EXT))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-subj", subj + "compose timestamp authority", "-keyout", str(t / "leaf.key"),
                 "-out", str(t / "leaf.csr"))
        _openssl("x509", "-req", "-in", str(t / "leaf.csr"), "-CA", str(t / "root.pem"), "-CAkey", str(t / "root.key"),
                 "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", str(t / "leaf.ext"),
                 "-out", str(t / "leaf.pem"))
        _private(out / "tsa-key.pem", _openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(t / "leaf.key")), TSA_UID)
        (out / "tsa-chain.pem").write_bytes((t / "leaf.pem").read_bytes() + (t / "root.pem").read_bytes())
    return True  # the root's private key is gone with the temporary directory: it issues nothing else


def _req_config(tmp: Path, extensions: str) -> str:
    path = tmp / "req.cnf"
    path.write_text(f"[req]\ndistinguished_name=dn\n[dn]\n[v3]\n{extensions}")
    return str(path)


def ensure(signing_key: Path, out: Path) -> dict[str, str]:
    """Every anchor file in `out` (made when missing); what was made, for the log line."""
    out.mkdir(parents=True, exist_ok=True)
    made = {"tsa": "made" if tsa(out) else "kept", "witness": "made" if witness(out) else "kept"}
    made["audit public key"] = audit_public(signing_key, out)
    for name in ("audit-public-key.pem", "audit-keyring.json", "tsa-chain.pem", "witness.vkey"):
        (out / name).chmod(0o644)  # public: the verifiers' anchors
    return made
