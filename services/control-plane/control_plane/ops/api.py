"""The operators' endpoints (admin keys; a user key gets 403 in the API's envelope):

    GET /v1/admin/providers                 every inference server: health, latency, loaded models, breaker
    GET /v1/admin/ontology-gaps             the unknown terms and their state    [?state=&tenant=&limit=]
                                            (a tenant admin: its own tenants only)
    GET /v1/admin/planner-patterns          the most frequent plans per category [?category=&tenant=&limit=]
    GET /v1/admin/graph-runs                the graph's maintenance runs         [?kind=&outcome=&limit=]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import asyncpg
from fastapi import APIRouter, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.knowledge.graph_api import _graph_errors
from control_plane.ops.patterns import planner_patterns
from control_plane.ops.providers import providers
from control_plane.ops.settings import OpsSettings
from moe_core.access.keystore import KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.gaps import GAP_STATES, Gaps, GapState
from moe_core.knowledge.graph.run_history import RUN_KINDS, RunHistory
from moe_core.runtime import query_params
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.settings import FleetSettings

OUTCOMES = ("running", "ok", "failed")



class OpsApi:
    def __init__(self, settings: FleetSettings, redis: Redis, keystore: Callable[[], KeyStore],
                 graph: Callable[[], GraphDB], ops: OpsSettings | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keystore = keystore
        self.graph = graph
        self.ops = ops or OpsSettings()
        self._history: RunHistory | None = None
        self.router = APIRouter(prefix="/v1/admin")
        for path, handler in (("/providers", self.providers), ("/ontology-gaps", self.ontology_gaps),
                              ("/planner-patterns", self.planner_patterns), ("/graph-runs", self.graph_runs)):
            self.router.add_api_route(path, handler, methods=["GET"])

    async def providers(self, request: Request) -> dict[str, Any]:
        await require_admin(request, self.keystore())
        try:
            return await providers(self.settings, self.ops, self.redis)
        except (RedisError, OSError) as exc:
            raise OpenAIError(503, "the fleet's shared state (Redis) is unavailable", "server_error",
                              code="store_unavailable") from exc

    async def ontology_gaps(self, request: Request) -> dict[str, Any]:
        """The gaps of one tenant (`?tenant=`), else of every tenant for the fleet operator and of its own
        tenants for a tenant admin (a gap holds a term from a tenant's question: another tenant's is a 404)."""
        key = await require_admin(request, self.keystore())
        state = cast(GapState | None, query_params.choice(request, "state", GAP_STATES))
        tenant = request.query_params.get("tenant") or None
        limit = query_params.integer(request, "limit", 100, 1, 1000)
        if tenant is not None and key.role != "operator" and tenant not in key.tenant_ids:
            raise OpenAIError(404, f"No ontology gaps of tenant '{tenant}'", code="not_found", param="tenant")
        tenants = [tenant] if tenant else (None if key.role == "operator" else list(key.tenant_ids))
        with _graph_errors():
            gaps = Gaps(self.graph())
            found = await gaps.find(tenants, state, limit)
            counts = None
            if tenant is None:  # by state: the whole fleet's, or the sum over the admin's tenants
                per = [await gaps.counts()] if tenants is None else [await gaps.counts(t) for t in tenants]
                counts = {s: sum(c[s] for c in per) for s in GAP_STATES}
        return {"object": "list", "data": found, "counts": counts}

    async def planner_patterns(self, request: Request) -> dict[str, Any]:
        """Plan shapes, and the learned patterns of one tenant (`?tenant=`), else of every tenant for the fleet
        operator and of its own tenants for a tenant admin (learned patterns are per tenant)."""
        key = await require_admin(request, self.keystore())
        limit = query_params.integer(request, "limit", 10, 1, 100)
        category = request.query_params.get("category") or None
        tenant = request.query_params.get("tenant") or None
        if tenant is not None and key.role != "operator" and tenant not in key.tenant_ids:
            raise OpenAIError(404, f"No planner patterns of tenant '{tenant}'", code="not_found", param="tenant")
        tenants = [tenant] if tenant else (None if key.role == "operator" else list(key.tenant_ids))
        try:
            return await planner_patterns(self.redis, self.settings.topic_namespace, self.ops.ops_patterns_scan,
                                          limit, category, tenants)
        except (RedisError, OSError) as exc:
            raise OpenAIError(503, "the plan cache (Redis) is unavailable", "server_error",
                              code="store_unavailable") from exc

    async def graph_runs(self, request: Request) -> dict[str, Any]:
        await require_admin(request, self.keystore())
        kind = query_params.choice(request, "kind", RUN_KINDS)
        outcome = query_params.choice(request, "outcome", OUTCOMES)
        limit = query_params.integer(request, "limit", 50, 1, 500)
        try:
            if self._history is None:
                self._history = RunHistory(self.keystore().pool, self.settings.topic_namespace)
            runs = await self._history.recent(kind, outcome, limit)
        except (asyncpg.PostgresError, OSError) as exc:
            raise OpenAIError(503, "the run history (Postgres) is unavailable", "server_error",
                              code="store_unavailable") from exc
        return {"object": "list", "data": runs}
