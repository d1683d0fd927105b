"""`make backup` and `make restore` for the local fleet: the backup tool (python -m control_plane.ops.backup) with
the local stores' superuser and passwords (fleetlib.secrets) and the broker's admin.

    python deploy/local/backup.py create            # into .data/backups/<UTC time>/
    python deploy/local/backup.py restore [DIR]     # default: the newest under .data/backups/

A restore stops the fleet's services (the stores stay up), restores, and starts the services again. Then it names
each tenant whose record the restore rolled back: a checkpoint witnessed after the backup (codex-lineage's checkpoint
file) reaches beyond the restored database's newest one (docs/operations.md, "Postgres restored to an earlier
point"): codex-lineage refuses to checkpoint that tenant until its record is cut over to a new log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlib import audit_key, config, secrets, services

BACKUPS = config.DATA / "backups"
TOOL = [sys.executable, "-m", "control_plane.ops.backup"]


def tool_env() -> dict[str, str]:
    """The control plane's environment (endpoints, .data/fleet.env, the caller's) with the superuser's DSN and the
    broker's admin (codex-lineage's group offsets, the topics' configuration)."""
    env = services.service_env("control-plane")
    eps = config.endpoints()
    password = secrets.get("postgres-admin")
    auth = f"postgres:{password}" if password else "postgres"
    env.setdefault("MOE_BACKUP_POSTGRES_DSN",
                   f"postgresql://{auth}@{config.HOST}:{config.port('postgres')}/{config.POSTGRES_DB}")
    env.update({"MOE_KAFKA_USERNAME": eps["kafka-admin-user"], "MOE_KAFKA_PASSWORD": eps["kafka-admin-password"]})
    return env


def run(args: list[str], env: dict[str, str] | None = None) -> int:
    """A fixed command of ours (this interpreter and module), as an argument list."""
    return subprocess.run(args, env=env, check=False).returncode  # noqa: S603


def fleetctl(*args: str) -> int:
    return run([sys.executable, str(Path(__file__).parent / "fleetctl.py"), *args])


def restore(folder: Path | None) -> int:
    from moe_core.runtime.backup_manifest import newest

    folder = folder or newest(BACKUPS)
    if folder is None:
        print(f"no backup under {BACKUPS}: `make backup` first, or BACKUP=<dir>", file=sys.stderr)
        return 2
    print(f"restoring {folder}: stopping the fleet's services (the stores stay up)")
    if fleetctl("down", "services") != 0:
        return 1
    code = run([*TOOL, "restore", "--from", str(folder)], tool_env())
    if code != 0:
        print("the restore failed: the services stay stopped (fix the cause and `make restore` again)",
              file=sys.stderr)
        return code
    started = fleetctl("up", "services")
    report_rollbacks(folder)
    return started


def rollbacks(folder: Path, checkpoint_file: Path) -> list[tuple[str, int, int, str]]:
    """(tenant, kept, witnessed, time of the witnessed checkpoint) of each tenant whose published checkpoint (the
    newest since its last cut-over) is beyond the backup's newest checkpoint of it (none: 0): seq kept+1..witnessed
    was witnessed after the backup and is not in the restored database (codex_lineage.cutover's test, made here
    from the backup's manifest, which is what the database now holds)."""
    from moe_core.audit.checkpoints import published_heads
    from moe_core.runtime.backup_manifest import NAME

    heads = json.loads((folder / NAME).read_text()).get("audit_heads") or {}
    found = []
    for tenant, published in sorted(published_heads(str(checkpoint_file)).items()):
        kept = int((heads.get(tenant) or {}).get("checkpoint") or 0)
        if int(published["size"]) > kept:
            found.append((tenant, kept, int(published["size"]), str(published["time"])))
    return found


def report_rollbacks(folder: Path) -> None:
    checkpoint_file = Path(services.service_env("codex-lineage").get("MOE_AUDIT_CHECKPOINT_FILE")
                           or audit_key.CHECKPOINTS)
    for tenant, kept, witnessed, time in rollbacks(folder, checkpoint_file):
        print(f"ROLLED BACK: the record of tenant {tenant}: seq {kept + 1}..{witnessed} were witnessed after this "
              f"backup (up to the checkpoint of {time}) and are not in the restored database. codex-lineage refuses "
              f"to checkpoint {tenant} and never re-signs that stretch; the requests of the stretch are read again "
              f"from Kafka and recorded at new seqs. See docs/operations.md \"Runbook: Postgres restored to an earlier "
              f"point\"; to continue the record under a new log: make cut-over-audit-log TENANT={tenant} "
              f"REASON=\"restored from {folder}\"", file=sys.stderr)


def share_manifest(folder: Path) -> None:
    """codex-lineage runs as an OS user of its own (fleetlib.osusers) and reads the newest manifest for the backups
    compliance rule (MOE_COMPLIANCE_BACKUPS_DIR=.data/backups): the backups' folder listable, each backup's folder
    passable (the sizes of the files its manifest lists), the manifest readable. The dumps stay 0600, the operator's."""
    from moe_core.runtime.backup_manifest import NAME

    folder.parent.chmod(0o755)
    folder.chmod(0o711)
    (folder / NAME).chmod(0o644)


def main(argv: list[str]) -> int:
    if argv[:1] == ["create"]:
        folder = BACKUPS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        code = run([*TOOL, "create", "--to", str(folder)], tool_env())
        if code == 0:
            share_manifest(folder)
        return code
    if argv[:1] == ["restore"] and len(argv) <= 2:
        return restore(Path(argv[1]) if len(argv) == 2 and argv[1] else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.umask(0o077)  # the backup holds the key store and the record: the operator's alone
    sys.exit(main(sys.argv[1:]))
