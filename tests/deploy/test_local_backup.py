"""`make backup` on the local fleet (deploy/local/backup.py): the backup tool writes under the operator's umask 077
(root's, as `make up` runs in CI), and codex-lineage, which runs as its own OS user there (fleetlib.osusers), reads
the newest manifest for the backups compliance rule (MOE_COMPLIANCE_BACKUPS_DIR=.data/backups). Before
share_manifest it could not even list the folder (the rule said "no backup"); after it, it lists the backups, reads
the manifest and sees the dumps' sizes, but cannot read a dump."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moe_core.runtime.backup_manifest import newest
from tests.support.fleet import REPO

pytestmark = pytest.mark.unit
# what codex-lineage's user does (backup_manifest.newest and the rule's size check), in the system's interpreter
PROBE = """
import json, os, sys
root = sys.argv[1]
try:
    folder = os.path.join(root, sorted(os.listdir(root))[-1])
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    sizes = [os.stat(os.path.join(folder, name)).st_size for name in manifest["files"]]
except OSError as exc:
    print(f"refused: {exc.strerror}"); sys.exit(0)
try:
    open(os.path.join(folder, "postgres.dump")).read(); print("dump readable")
except OSError:
    print(f"manifest read, sizes {sizes}, dump unreadable")
"""


@pytest.fixture
def backups() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the fleet's own OS users exist only when it runs as root")
    top = Path(tempfile.mkdtemp(prefix="moe-backups-"))
    top.chmod(0o755)
    old = os.umask(0o077)  # as deploy/local/backup.py sets it before the tool writes
    try:
        folder = top / "backups" / "20261126T120000Z"
        folder.mkdir(parents=True)
        (folder / "postgres.dump").write_bytes(b"the key store and the record")
        (folder / "manifest.json").write_text(json.dumps({"created_at": "2026-11-26T12:00:00Z",
                                                          "files": {"postgres.dump": {"size": 28}}}))
    finally:
        os.umask(old)
    yield folder
    shutil.rmtree(top)


def _as_nobody(root: Path) -> str:
    nobody = pwd.getpwnam("nobody")
    done = subprocess.run(["/usr/bin/python3", "-c", PROBE, str(root)], capture_output=True, text=True, timeout=30,
                          user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], check=True)
    return done.stdout.strip()


def _local_backup() -> Any:
    spec = importlib.util.spec_from_file_location("local_backup", REPO / "deploy" / "local" / "backup.py")
    assert spec is not None and spec.loader is not None
    local_backup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local_backup)
    return local_backup


def test_codex_lineages_user_reads_the_newest_manifest_and_not_the_dumps(backups: Path) -> None:
    local_backup = _local_backup()
    assert _as_nobody(backups.parent) == "refused: Permission denied"  # the tool's own modes: 0700
    local_backup.share_manifest(backups)
    assert _as_nobody(backups.parent) == "manifest read, sizes [28], dump unreadable"
    assert newest(backups.parent) == backups


def _checkpoint(tenant: str, size: int, time: str) -> str:
    return json.dumps({"checkpoint": {"tenant_id": tenant, "size": size, "time": time}, "signature": "s"})


def test_a_restore_names_each_tenant_witnessed_beyond_the_backup(tmp_path: Path) -> None:
    """`make restore` names a tenant rolled back when its published checkpoint (the newest since its last cut-over)
    is beyond the backup's newest checkpoint of it: a tenant checkpointed since the backup (default), one that did
    not exist then (new), not one whose checkpoints stopped at the backup (same) nor one cut over since (cut)."""
    (tmp_path / "manifest.json").write_text(json.dumps({"audit_heads": {
        "default": {"seq": 12, "hash": "h", "checkpoint": 10}, "same": {"seq": 4, "hash": "h", "checkpoint": 4},
        "cut": {"seq": 3, "hash": "h", "checkpoint": 3}}}))
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    checkpoints.write_text("\n".join([
        _checkpoint("default", 10, "2026-11-27T01:00:00+00:00"), _checkpoint("same", 4, "2026-11-27T01:00:00+00:00"),
        _checkpoint("default", 14, "2026-11-27T01:02:00+00:00"), _checkpoint("new", 2, "2026-11-27T01:02:00+00:00"),
        _checkpoint("cut", 9, "2026-11-27T01:01:00+00:00"),
        json.dumps({"cutover": {"tenant_id": "cut", "time": "2026-11-27T01:01:30+00:00"}, "signature": "s"})]))
    assert _local_backup().rollbacks(tmp_path, checkpoints) == [
        ("default", 10, 14, "2026-11-27T01:02:00+00:00"), ("new", 0, 2, "2026-11-27T01:02:00+00:00")]
    checkpoints.unlink()  # no checkpoint file: nothing published, nothing rolled back
    assert _local_backup().rollbacks(tmp_path, checkpoints) == []
