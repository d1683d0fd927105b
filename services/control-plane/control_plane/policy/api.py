"""GET /v1/admin/policy (admin and operator keys): the policy version in force at Open Policy Agent, the
version of the policy files on disk, and the last load error when they differ (OPA's --watch refused a file
that does not parse or compile and kept the previous policies). Also sets moe_policy_files_not_in_force."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from control_plane.policy.settings import PolicySettings
from moe_core.access.keystore import KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.policy import PolicyClient, PolicyUnavailable, PolicyVersion, version_of
from moe_core.runtime.observability.metrics import POLICY_FILES_NOT_IN_FORCE
from moe_core.runtime.openai_error import OpenAIError

CHECK_TIMEOUT_S = 20.0


def rego_files(directory: Path) -> list[Path]:
    """The Rego files OPA loads from `directory` (its *_test.rego are `opa test`'s, not loaded)."""
    return sorted(p for p in directory.glob("*.rego") if not p.name.endswith("_test.rego"))


def files_version(directory: Path) -> PolicyVersion | None:
    """The version of the Rego files in `directory` as OPA would load them (None: no directory, no files)."""
    files = rego_files(directory) if directory.is_dir() else []
    return version_of((p.name, p.read_bytes()) for p in files) if files else None


async def check_files(binary: str, files: list[Path]) -> str:
    """`opa check` of the files: its complaint, or '' when they parse and compile."""
    proc = await asyncio.create_subprocess_exec(binary, "check", *map(str, files), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "opa check did not finish"
    return out.decode(errors="replace").strip()[:4000] if proc.returncode else ""


class PolicyApi:
    def __init__(self, settings: PolicySettings, client: PolicyClient, keystore: Callable[[], KeyStore]) -> None:
        self.settings = settings
        self.client = client
        self.keystore = keystore
        self.router = APIRouter()
        self.router.add_api_route("/v1/admin/policy", self.status, methods=["GET"])

    async def status(self, request: Request) -> dict[str, Any]:
        await require_admin(request, self.keystore())
        try:
            in_force = await self.client.version()
        except PolicyUnavailable as exc:
            raise OpenAIError(503, str(exc), "server_error", code="policy_unavailable") from None
        body: dict[str, Any] = {"object": "policy.status", "engine": self.client.url, "version": in_force.digest,
                                "modules": list(in_force.modules), "files_version": None, "in_force": True,
                                "last_load_error": None}
        directory = self.settings.policy_dir()
        on_disk = await asyncio.to_thread(files_version, directory) if directory is not None else None
        if on_disk is not None:
            body["files_version"] = on_disk.digest
            body["in_force"] = on_disk.digest == in_force.digest
        if not body["in_force"]:
            error = f"the policy files in {directory} ({on_disk.digest if on_disk else '?'}) are not in force: " \
                    f"OPA refused them and keeps {in_force.digest}"
            if self.settings.opa_binary and directory is not None:
                complaint = await check_files(self.settings.opa_binary, await asyncio.to_thread(rego_files, directory))
                error += f": {complaint}" if complaint else " (they check now: OPA reloads on the next change)"
            body["last_load_error"] = error
        POLICY_FILES_NOT_IN_FORCE.set(0 if body["in_force"] else 1)
        return body
