"""The backup tool's command line: create, verify, restore (see the package's docstring)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from control_plane.ops.backup import documents, graph, kafka_state, pg, redis_state
from control_plane.ops.backup.settings import BackupSettings
from moe_core.runtime import backup_manifest as manifest

REFUSED, DAMAGED, FAILED = 3, 4, 2


async def create(settings: BackupSettings, folder: Path) -> dict[str, object]:
    """Every store into `folder` (new or empty), the manifest last. Kafka's offsets first: the database then holds
    at least what codex-lineage had committed, so a restore's re-read from them leaves no gap."""
    started = datetime.now(UTC)
    parts: dict[str, object] = {"kafka": await kafka_state.dump(settings.topic_namespace, folder)}
    parts["postgres"], heads = await pg.dump(settings, folder)
    if settings.neo4j_url:
        parts["neo4j"] = await graph.dump(settings, folder)
    if settings.chroma_url:
        parts["chroma"] = await asyncio.to_thread(documents.dump, settings, folder)
    if settings.redis_url.get_secret_value():
        parts["redis"] = await asyncio.to_thread(redis_state.dump, settings, folder)
    return manifest.write(folder, started, parts, heads)


async def restore(settings: BackupSettings, folder: Path) -> dict[str, object]:
    """Every store of the backup put back, the fleet's services stopped (else refused: they would write meanwhile)."""
    active = await kafka_state.active_groups(settings.topic_namespace)
    if active:
        raise PermissionError("the fleet's services are running (consumer groups with members: "
                              + ", ".join(f"{g} ({n})" for g, n in sorted(active.items()))
                              + "): stop them (keep the stores up) and restore again")
    done: dict[str, object] = {}
    body = manifest.verify(folder).manifest
    await asyncio.to_thread(pg.restore, settings, folder, body.get("parts", {}).get("postgres", {}).get(
        "database_grants", []))
    done["postgres"] = "restored"
    files = set(body.get("files", {}))
    if graph.NODES in files and settings.neo4j_url:
        done["neo4j"] = await graph.restore(settings, folder)
    if documents.INDEX in files and settings.chroma_url:
        done["chroma"] = await asyncio.to_thread(documents.restore, settings, folder)
    if redis_state.FILE in files and settings.redis_url.get_secret_value():
        done["redis"] = await asyncio.to_thread(redis_state.restore, settings, folder)
    done["kafka"] = await kafka_state.restore(folder)
    return done


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m control_plane.ops.backup",
                                     description="Back up and restore the fleet's stores (MOE_BACKUP_* settings)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="back up every store").add_argument("--to", required=True, type=Path)
    sub.add_parser("verify", help="check a backup against its manifest").add_argument("folder", type=Path)
    sub.add_parser("restore", help="restore a backup (services stopped)").add_argument(
        "--from", dest="source", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = BackupSettings()
    folder = args.to if args.command == "create" else args.folder if args.command == "verify" else args.source
    try:
        if args.command == "create":
            folder.mkdir(parents=True, exist_ok=True)
            if any(folder.iterdir()):
                raise FileExistsError(f"{folder} is not empty: a backup goes into a folder of its own")
            body = asyncio.run(create(settings, folder))
            print(f"backup written to {folder}: {len(body['files'])} files, audit heads "  # type: ignore[arg-type]
                  f"{json.dumps(body['audit_heads'], sort_keys=True)}")
            return 0
        check = manifest.verify(folder)
        if not check.ok:
            print(f"backup {folder} does not verify:\n  " + "\n  ".join(check.problems), file=sys.stderr)
            return DAMAGED
        if args.command == "verify":
            print(f"backup {folder} verifies: {len(check.manifest['files'])} files, made "
                  f"{check.manifest['created_at']} by fleet {check.manifest['fleet_version']}")
            return 0
        print(f"restored {folder}: {json.dumps(asyncio.run(restore(settings, folder)), sort_keys=True)}")
        return 0
    except PermissionError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return REFUSED
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"backup {args.command} failed: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
