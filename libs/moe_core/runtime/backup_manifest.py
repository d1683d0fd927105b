"""A backup's manifest.json (control_plane.ops.backup writes it; codex-lineage's backups compliance check reads
it): what a backup holds (each file with its sha256 and size), when it was made, by which version of the fleet, and
each tenant's audit chain head at the time; `verify` checks every file against it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

NAME = "manifest.json"
FORMAT = "moe-backup/1"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fleet_version() -> str:
    try:
        return metadata.version("moe-sovereign-fleet")
    except metadata.PackageNotFoundError:
        return "unknown"


def write(folder: Path, started: datetime, parts: dict[str, Any], heads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The manifest of every file in `folder` (written last, atomically: a folder without one is no backup)."""
    files = {p.relative_to(folder).as_posix(): {"sha256": sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != NAME}
    body = {"format": FORMAT, "created_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
            "fleet_version": fleet_version(), "audit_heads": heads, "parts": parts, "files": files}
    tmp = folder / f".{NAME}.tmp"
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
    os.replace(tmp, folder / NAME)
    return body


@dataclass
class Check:
    manifest: dict[str, Any]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(folder: Path) -> Check:
    """Every file the manifest names is there with its sha256, and no other file is."""
    try:
        body = json.loads((folder / NAME).read_text())
    except FileNotFoundError:
        return Check({}, [f"{folder}: no {NAME} (not a backup, or one that did not finish)"])
    except ValueError as exc:
        return Check({}, [f"{folder / NAME}: not JSON ({exc})"])
    if body.get("format") != FORMAT:
        return Check(body, [f"{folder / NAME}: format {body.get('format')!r}, expected {FORMAT}"])
    problems = []
    for name, meta in sorted(body.get("files", {}).items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != meta["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest (changed or damaged)")
    listed = set(body.get("files", {}))
    problems += [f"{p.relative_to(folder).as_posix()}: not in the manifest" for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name not in (NAME,) and not p.name.startswith(".")
                 and p.relative_to(folder).as_posix() not in listed]
    return Check(body, problems)


def newest(root: Path) -> Path | None:
    """The newest backup under `root` (by its manifest's time): what `make restore` takes by default."""
    found = []
    for path in root.glob(f"*/{NAME}"):
        try:
            found.append((json.loads(path.read_text())["created_at"], path.parent))
        except (OSError, ValueError, KeyError):
            continue
    return max(found)[1] if found else None
