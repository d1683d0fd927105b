#!/usr/bin/env python3
"""The compose deployment's secrets, generated once: every variable the compose files refuse to start without
(`${NAME:?missing secret NAME: ...}`) gets a random value in compose/secrets.env (mode 0600), and codex-lineage's
audit signing key (Ed25519, openssl) is written where MOE_AUDIT_SIGNING_KEY_FILE points, owned by the image's user,
and the record's anchors into MOE_AUDIT_ANCHORS_DIR (compose/anchors/: the public key and keyring the control plane
verifies with, the timestamp authority's key and chain, the witness's key and vkey; compose/anchors.py).

    python3 compose/init_secrets.py                 # compose/secrets.env and compose/audit-signing-key.pem
    docker compose --env-file compose/.env --env-file compose/secrets.env -f compose/compose.yaml up -d

A value already in the file is kept (passwords a volume was initialised with must not change); the file lists
what was added. Stdlib and openssl only: it runs before any image exists (docs/deploy.md#secrets).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIRED = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?missing secret ")
NOT_RANDOM = {"MOE_AUDIT_SIGNING_KEY_FILE", "MOE_AUDIT_ANCHORS_DIR"}  # paths, not passwords
APP_UID = 10001  # the fleet image's user (deploy/docker/Dockerfile)


def required_names(files: list[Path]) -> list[str]:
    """Every secret the compose files require, in the order they first appear."""
    names: dict[str, None] = {}
    for path in files:
        for name in REQUIRED.findall(path.read_text()):
            names.setdefault(name, None)
    return list(names)


def read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def signing_key(path: Path) -> bool:
    """codex-lineage's Ed25519 key, made when missing; False when it was there already."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True)
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, APP_UID, APP_UID)
    else:
        print(f"secrets: {path} must be owned by uid {APP_UID}: sudo chown {APP_UID}:{APP_UID} {path}", file=sys.stderr)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "secrets.env")
    parser.add_argument("--key", type=Path, help="the audit signing key (default: compose/audit-signing-key.pem)")
    parser.add_argument("--anchors", type=Path, help="the anchors' directory (default: compose/anchors/)")
    parser.add_argument("files", nargs="*", type=Path, help="compose files (default: compose/compose*.yaml)")
    args = parser.parse_args(argv)
    files = args.files or sorted(HERE.glob("compose*.yaml"))
    have = read_env(args.out)
    key = args.key or Path(have.get("MOE_AUDIT_SIGNING_KEY_FILE") or HERE / "audit-signing-key.pem")
    added = {name: secrets.token_urlsafe(24) for name in required_names(files)
             if name not in have and name not in NOT_RANDOM}
    anchor_dir = args.anchors or Path(have.get("MOE_AUDIT_ANCHORS_DIR") or HERE / "anchors")
    if "MOE_AUDIT_SIGNING_KEY_FILE" not in have:
        added["MOE_AUDIT_SIGNING_KEY_FILE"] = str(key.resolve())
    if "MOE_AUDIT_ANCHORS_DIR" not in have:
        added["MOE_AUDIT_ANCHORS_DIR"] = str(anchor_dir.resolve())
    if added:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as out:
            out.writelines(f"{name}={value}\n" for name, value in added.items())
    made_key = signing_key(key)
    sys.path.insert(0, str(HERE))
    import anchors  # compose/anchors.py, beside this file

    made = anchors.ensure(key, anchor_dir)
    print(f"secrets: {args.out}: {len(added)} added ({', '.join(added) or 'none'}), {len(have)} kept; "
          f"audit signing key {key}: {'made' if made_key else 'kept'}; anchors {anchor_dir}: "
          + ", ".join(f"{k} {v}" for k, v in made.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
