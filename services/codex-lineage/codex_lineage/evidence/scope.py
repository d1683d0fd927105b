"""What a bundle is of: one request, or one tenant's period (at most MOE_EVIDENCE_MAX_DAYS long), and the bundle
built from the audit store for it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from codex_lineage.evidence.gather import Close, ExportError, period_stretch, request_stretches
from codex_lineage.evidence.writer import Material, bundle_files
from moe_core.audit.records import iso
from moe_core.audit.signer import Signer
from moe_core.policy.classes import ClassBook

SAFE = re.compile(r"[^A-Za-z0-9._-]")  # a file name (and a Content-Disposition) from ids


@dataclass(frozen=True)
class Scope:
    response_id: str | None = None
    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, response_id: str | None, tenant: str | None, since: datetime | None, until: datetime | None,
           max_days: float) -> Scope:
        """The scope asked for, or why it cannot be exported (ExportError, 400)."""
        if response_id:
            if tenant or since or until:
                raise ExportError("give either a response id or a tenant with since and until, not both")
            return cls(response_id=response_id)
        if not (tenant and since and until):
            raise ExportError("give a response id, or a tenant with since and until")
        if until <= since:
            raise ExportError("until must be after since")
        if (until - since).total_seconds() > max_days * 86400:
            raise ExportError(f"the period is longer than the maximum of {max_days:g} days (MOE_EVIDENCE_MAX_DAYS): "
                              "export it in parts")
        return cls(tenant=tenant, since=since, until=until)

    def manifest(self) -> dict[str, Any]:
        if self.response_id:
            return {"kind": "request", "response_id": self.response_id}
        assert self.since is not None and self.until is not None
        return {"kind": "period", "tenant_id": self.tenant, "since": iso(self.since), "until": iso(self.until)}

    @property
    def name(self) -> str:
        """The bundle's folder name."""
        if self.response_id:
            return SAFE.sub("_", f"evidence-{self.response_id}")
        assert self.since is not None
        return SAFE.sub("_", f"evidence-{self.tenant}-{self.since.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}")


async def build(pool: Any, scope: Scope, signer: Signer, material: Material, close: Close,
                extra: Callable[[], Awaitable[dict[str, bytes]]] | None = None,
                classes: ClassBook | None = None) -> dict[str, bytes]:
    """Every file of the bundle (ExportError: nothing of the scope is recorded, 404; or no checkpoint can close
    it); `extra` adds files once the scope is known to be recorded."""
    if scope.response_id:
        stretches = await request_stretches(pool, scope.response_id, close)
    else:
        assert scope.tenant and scope.since and scope.until
        stretches = [await period_stretch(pool, scope.tenant, scope.since, scope.until, close)]
    exported_at = str(iso(await pool.fetchval("SELECT clock_timestamp()")))
    return bundle_files(stretches, scope.manifest(), signer, material, exported_at,
                        await extra() if extra is not None else None, classes)
