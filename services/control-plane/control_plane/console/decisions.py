"""A review page's approve or reject (quarantined triples, knowledge imports, held documents): the note from the
form, the decision made by the control plane's own API (so the policy's four-eyes rules are the API's), the page
shown again with the refusal, or a redirect after the decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from control_plane.console.api import ApiError
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session

Page = Callable[..., Awaitable[Response]]  # (request, session, *, status, error) -> the review page


async def decide(core: ConsoleCore, request: Request, s: Session, api_path: str, page: Page, back: str, *,
                 reason_required: bool = True) -> Response:
    """POST {api_path}/approve|reject with the form's note; `page` again on a refusal, else a redirect to `back`."""
    decision = request.path_params["decision"]
    if decision not in ("approve", "reject"):
        return core.render(request, "error.html", s, status=404, message="no such decision")
    note = str((await request.form()).get("note") or "").strip()
    if reason_required and decision == "reject" and not note:
        return await page(request, s, status=400, error="A rejection needs a reason.")
    try:
        await core.api.call(s.token, "POST", f"{api_path}/{decision}", body={"note": note})
    except ApiError as exc:
        return await page(request, s, status=exc.status, error=exc.message)
    return RedirectResponse(back, status_code=303)
