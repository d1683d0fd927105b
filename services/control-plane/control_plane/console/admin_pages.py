"""Console pages of what the system we replace shows its admins (issue 28): the graph's maintenance (the gap
healer's and linter's run history, the ontology gaps it works on), the precision tools' recent calls, and the
live configuration (what each service last ran with, the expert templates, this control plane's settings).
Every page reads the control plane's own API with the signed-in key, so it shows exactly what that key may see:
a tenant admin its own tenants' tool calls; the configuration the fleet operator only (a tenant admin gets the
API's 403)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from control_plane.console.config_pages import ConfigPages
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session


class AdminPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/healer", self.healer)
        core.page("/tool-calls", self.tool_calls)
        ConfigPages(core)  # /config: the live configuration, edited (control_plane.console.config_pages)

    async def healer(self, request: Request, s: Session) -> Response:
        runs = (await self.core.api.call(s.token, "GET", "/v1/admin/graph-runs", params={"limit": 100}))["data"]
        gaps = await self.core.api.call(s.token, "GET", "/v1/admin/ontology-gaps", params={"limit": 100})
        return self.core.render(request, "healer.html", s, runs=runs, gaps=gaps["data"], counts=gaps.get("counts"))

    async def tool_calls(self, request: Request, s: Session) -> Response:
        tool = request.query_params.get("tool", "").strip()
        calls = (await self.core.api.call(s.token, "GET", "/v1/tool-calls", params={"limit": 200}))["data"]
        shown = [c for c in calls if not tool or c["tool"] == tool]
        return self.core.render(request, "tool_calls.html", s, calls=shown, tool=tool,
                                tools=sorted({str(c["tool"]) for c in calls if c["tool"]}))
