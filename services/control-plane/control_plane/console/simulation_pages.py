"""Console page of guardrail rule changes: the simulations of candidate rule files (per tenant: the recorded
requests tried and the decisions the candidate would change) and the proposals to apply one, with approve and
reject. Read and decided through the control plane's own API (control_plane.policy.proposals_api), so the
four-eyes rules (policy/opa/guardrails.rego) and the tenant scoping are the API's. For the fleet operator, the
egress policy's changes too (control_plane.policy.egress_changes_api: simulated candidates with the decisions they
would change, approve and reject; policy/opa/policy_changes.rego)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from control_plane.console import decisions
from control_plane.console.api import ApiError
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session


class SimulationPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/simulations", self.overview)
        core.page("/simulations/proposals/{proposal_id}/{decision}", self.decide, "POST")
        core.page("/simulations/egress/{change_id}/{decision}", self.decide_egress, "POST")

    async def overview(self, request: Request, s: Session, *, status: int = 200, **context: Any) -> Response:
        api = self.core.api
        simulations = (await api.call(s.token, "GET", "/v1/guardrails/simulations"))["data"]
        state = request.query_params.get("status", "pending")
        proposals = (await api.call(s.token, "GET", "/v1/guardrails/proposals", params={"status": state}))["data"]
        try:  # the egress policy is the fleet operator's: another key sees no such section
            egress = (await api.call(s.token, "GET", "/v1/egress/changes"))["data"]
        except ApiError:
            egress = None
        return self.core.render(request, "simulations.html", s, status=status, simulations=simulations,
                                proposals=proposals, state=state, egress=egress, **context)

    async def decide(self, request: Request, s: Session) -> Response:
        proposal = quote(request.path_params["proposal_id"], safe="")
        return await decisions.decide(self.core, request, s, f"/v1/guardrails/proposals/{proposal}", self.overview,
                                      "/console/simulations", reason_required=True)

    async def decide_egress(self, request: Request, s: Session) -> Response:
        change = quote(request.path_params["change_id"], safe="")
        return await decisions.decide(self.core, request, s, f"/v1/egress/changes/{change}", self.overview,
                                      "/console/simulations", reason_required=True)
