"""What codex-lineage's HTTP handlers are given (FastAPI dependencies): the service's parts, built once in the
lifespan (`app.state.parts`), and the caller of an admin endpoint, checked by the fleet's one key rule
(moe_core.access.request_auth.admin_caller) on codex-lineage's key pool. Errors are OpenAIErrors, rendered in the
fleet's one envelope by the app's error handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from codex_lineage.access import Access
from codex_lineage.parts import Parts
from moe_core.access.request_auth import admin_caller
from moe_core.runtime.openai_error import OpenAIError


def parts(request: Request) -> Parts:
    found: Parts = request.app.state.parts
    return found


async def admin_access(request: Request) -> Access:
    """The admin key's role and tenants (what it may see: codex_lineage.access)."""
    caller = await admin_caller(request, parts(request).keys)
    return Access(caller.role, tuple(caller.tenant_ids))


async def operator_access(access: Annotated[Access, Depends(admin_access)]) -> Access:
    """The fleet operator only: what names every tenant's records (a tenant admin: 403 operator_only)."""
    if not access.fleet:
        raise OpenAIError(403, "this names every tenant's records: it needs the fleet operator's key",
                          "permission_error", code="operator_only")
    return access


Running = Annotated[Parts, Depends(parts)]
AdminAccess = Annotated[Access, Depends(admin_access)]
OperatorAccess = Annotated[Access, Depends(operator_access)]
