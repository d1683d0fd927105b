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


def test_codex_lineages_user_reads_the_newest_manifest_and_not_the_dumps(backups: Path) -> None:
    spec = importlib.util.spec_from_file_location("local_backup", REPO / "deploy" / "local" / "backup.py")
    assert spec is not None and spec.loader is not None
    local_backup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local_backup)
    assert _as_nobody(backups.parent) == "refused: Permission denied"  # the tool's own modes: 0700
    local_backup.share_manifest(backups)
    assert _as_nobody(backups.parent) == "manifest read, sizes [28], dump unreadable"
    assert newest(backups.parent) == backups
