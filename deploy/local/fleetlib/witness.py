"""The witness of the audit checkpoints: the transparency-dev omniwitness (built from the Go module proxy into
.data/bin by gotools), a separate process with its own Ed25519 key and its own storage (SQLite), speaking
c2sp.org/tlog-witness. It cosigns a tenant log's checkpoint only when it is consistent with the last one it
cosigned for that log.

Its key is generated once into .data/witness/ (the private key 0600, in the note format the witness reads; the
vkey beside it is public: codex-lineage, the control plane and the auditors check its cosignatures with it,
MOE_AUDIT_WITNESS_KEY). The tenants' logs are provisioned from codex-lineage's GET /v1/witness/logs (the
public-witness-network list format), polled every few seconds; a log once provisioned keeps its key.
"""

from __future__ import annotations

import base64
import hashlib
import sys

from . import config, gotools, osusers
from .component import Component

WITNESS_DIR = config.DATA / "witness"
KEY = WITNESS_DIR / "witness.key"
VKEY = WITNESS_DIR / "witness.vkey"
DB = WITNESS_DIR / "witness.db"
NAME = "moe-fleet.local/witness"
POLL = "5s"


def keypair(name: str) -> tuple[str, str]:
    """(private key, vkey) of a new Ed25519 witness key in the note formats (cosignature/v1, type 0x04)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = bytes([4]) + key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    hash_hex = hashlib.sha256(name.encode() + b"\n" + public).digest()[:4].hex()
    private = f"PRIVATE+KEY+{name}+{hash_hex}+{base64.b64encode(bytes([4]) + seed).decode()}"
    return private, f"{name}+{hash_hex}+{base64.b64encode(public).decode()}"


def ensure_material() -> None:
    """The witness's key, generated when missing (never replaced: its cosignatures must keep verifying)."""
    if KEY.is_file() and VKEY.is_file():
        return
    private, vkey = keypair(NAME)
    WITNESS_DIR.mkdir(parents=True, exist_ok=True)
    KEY.unlink(missing_ok=True)
    KEY.touch(mode=0o600)
    KEY.write_text(private + "\n")
    VKEY.write_text(vkey + "\n")


def argv(port: int, key: str, db: str, logs_url: str, poll: str = POLL) -> list[str]:
    """The omniwitness's command line: listening on `port` only (no metrics port), its key and SQLite file, its
    logs from `logs_url`."""
    return [str(gotools.binary("omniwitness")), f"--listen={config.HOST}:{port}", "--metrics_listen=",
            f"--private_key_path={key}", f"--db_file={db}", f"--public_witness_config_url={logs_url}",
            f"--public_witness_config_poll_interval={poll}", "--logtostderr"]


def prepare() -> list[str]:
    gotools.ensure_tool("omniwitness")
    ensure_material()
    # as root: its key and database are moe-witness's alone (it makes its SQLite journal beside them)
    osusers.private_folder(WITNESS_DIR, osusers.user_of("witness"), [KEY, *WITNESS_DIR.glob(f"{DB.name}*")])
    logs = f"http://{config.HOST}:{config.port('codex-lineage')}/v1/witness/logs"
    return argv(config.port("witness"), str(KEY), str(DB), logs)


async def check() -> None:
    import httpx

    async with httpx.AsyncClient(timeout=3) as client:  # an empty body: 400, from the witness's own handler
        resp = await client.post(f"http://{config.HOST}:{config.port('witness')}/add-checkpoint", content=b"")
        if resp.status_code != 400:
            raise RuntimeError(f"POST /add-checkpoint returned {resp.status_code}")


COMPONENT = Component(name="witness", group="infra", port_key="witness", prepare=prepare, check=check, deadline=60,
                      match=lambda: f"--db_file={DB}", user=osusers.user_of("witness"),
                      ready="`POST /add-checkpoint` with an empty body answers 400 (the witness's own handler)")

if __name__ == "__main__":  # python -m fleetlib.witness NAME: a new key pair (tests)
    print("\n".join(keypair(sys.argv[1])))
