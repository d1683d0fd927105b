"""What an operator sees of `make backup` and `make restore` (deploy/local/backup.py): the folder a backup was
written to and its manifest, the tenants a restore names as rolled back, and an audit record asked for through the
audit API until it is there."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.newcomer.first_steps import REPO


@dataclass(frozen=True)
class Backup:
    """`make backup`'s outcome: its exit code and output, the folder it names, that folder's manifest."""

    done: subprocess.CompletedProcess[str]

    @property
    def folder(self) -> Path:
        found = re.search(r"^backup written to (\S+): ", self.done.stdout, re.MULTILINE)
        assert found, f"make backup named no folder:\n{self.done.stdout}{self.done.stderr}"
        return Path(found.group(1))

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "manifest.json").read_text()))

    def kept(self, tenant: str) -> int:
        """The size of the tenant's newest checkpoint in the backup (what a restore keeps checkpointed)."""
        return int(self.manifest["audit_heads"][tenant]["checkpoint"] or 0)


def verify(folder: Path) -> subprocess.CompletedProcess[str]:
    """The backup tool's own check of a folder against its manifest."""
    return subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "control_plane.ops.backup", "verify",
                           str(folder)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def rolled_back(output: str) -> dict[str, tuple[int, int]]:
    """tenant -> (first, last) seq of the stretch `make restore` names as rolled back."""
    found = re.findall(r"ROLLED BACK: the record of tenant (\S+): seq (\d+)\.\.(\d+) ", output)
    return {tenant: (int(first), int(last)) for tenant, first, last in found}


def cut_over_stretch(output: str, tenant: str) -> tuple[int, int] | None:
    """The stretch `make cut-over-audit-log` says it left behind for the tenant."""
    found = re.search(rf"tenant {re.escape(tenant)} cut over from \S+ to \S+: seq (\d+)\.\.(\d+) rolled back", output)
    return (int(found.group(1)), int(found.group(2))) if found else None


def audit_record(url: str, key: str, response_id: str, deadline_s: float) -> httpx.Response:
    """GET /v1/audit/{id}?verify=true until the audit store holds the request's records (404 until then)."""
    deadline = time.monotonic() + deadline_s
    while True:
        resp = httpx.get(f"{url}/v1/audit/{response_id}", params={"verify": "true"},
                         headers={"Authorization": f"Bearer {key}"}, timeout=60)
        if resp.status_code == 200 or time.monotonic() > deadline:
            return resp
        time.sleep(float(resp.headers.get("retry-after") or 2) if resp.status_code == 429 else 2)
