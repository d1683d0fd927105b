"""The split of issue 27 held by the code: the edge (gateway) serves only the protocols, health and metrics;
every other route is the control plane's; neither service imports the other; the edge's handlers are named
functions of one router per protocol."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from control_plane.app import create_app as control_plane_app
from control_plane.settings import ControlPlaneSettings
from gateway.app import create_app as gateway_app
from gateway.protocols.anthropic import routes as anthropic_routes
from gateway.protocols.models import routes as models_routes
from gateway.protocols.openai import routes as openai_routes
from gateway.protocols.responses import routes as responses_routes
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
PROTOCOLS = {"/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses",
             "/v1/responses/{response_id}", "/v1/models", "/v1/models/{model_id}"}
HEALTH_AND_METRICS = {"/alive", "/ready", "/metrics", "/v1/admin/metrics"}


def _paths(app: FastAPI) -> set[str]:
    return set(app.openapi()["paths"])


def test_the_edge_serves_only_the_protocols_health_and_metrics() -> None:
    edge = gateway_app(GatewaySettings(), manage_broker=False)
    assert _paths(edge) == PROTOCOLS  # /alive, /ready, /metrics and /v1/admin/metrics are not in the schema
    control = _paths(control_plane_app(ControlPlaneSettings(), manage_broker=False))
    client = TestClient(edge)  # no lifespan: nothing is connected; an unknown path is a 404 before any store
    for path in [*sorted(control - HEALTH_AND_METRICS), "/console", "/console/login"]:
        concrete = path.replace("{", "").replace("}", "")
        assert client.get(concrete).status_code in (404, 405), path
        assert client.post(concrete, json={}).status_code in (404, 405), path


def test_the_control_plane_serves_no_protocol_route() -> None:
    paths = _paths(control_plane_app(ControlPlaneSettings(), manage_broker=False))
    assert not paths & PROTOCOLS
    assert {"/v1/admin/keys", "/v1/usage", "/v1/feedback", "/v1/audit/{response_id}", "/v1/memory/documents",
            "/v1/knowledge/imports", "/graph/quarantine",
            "/v1/provider-status"} <= paths  # the limits the edge applies, as clients poll them (Claude Code)


@pytest.mark.parametrize(("package", "other"), [("gateway", "control_plane"), ("control_plane", "gateway")])
def test_neither_service_imports_the_other(package: str, other: str) -> None:
    folder = {"gateway": "gateway", "control_plane": "control-plane"}[package]
    for path in (REPO / "services" / folder / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == other or n.startswith(f"{other}.") for n in names), f"{path} imports {other}"


def test_each_protocol_has_one_router_of_named_handlers() -> None:
    routers = {openai_routes: {"/v1/chat/completions"},
               anthropic_routes: {"/v1/messages", "/v1/messages/count_tokens"},
               responses_routes: {"/v1/responses", "/v1/responses/{response_id}"},
               models_routes: {"/v1/models", "/v1/models/{model_id}"}}
    for module, paths in routers.items():
        routes = [r for r in module.router.routes if isinstance(r, APIRoute)]
        assert {r.path for r in routes} == paths, module.__name__
        for route in routes:  # a module-level function, findable by name (no closure inside create_app)
            assert getattr(module, route.endpoint.__name__) is route.endpoint


def test_no_protocol_handler_or_dependency_runs_in_the_thread_pool() -> None:
    """A plain-function endpoint or dependency is run in FastAPI's thread pool: a thread hop (and the GIL handed
    back and forth) on every request of the hot path. The protocols' handlers and their dependencies are async."""
    edge = gateway_app(GatewaySettings(), manage_broker=False)

    def sync_calls(dependant: Any) -> list[str]:
        found = [] if dependant.call is None or inspect.iscoroutinefunction(dependant.call) else \
            [getattr(dependant.call, "__qualname__", repr(dependant.call))]
        return found + [name for sub in dependant.dependencies for name in sync_calls(sub)]

    def api_routes(routes: list[Any]) -> list[APIRoute]:  # an included router keeps its own routes
        return [r for route in routes for r in ([route] if isinstance(route, APIRoute) else
                                                api_routes(route.original_router.routes)
                                                if hasattr(route, "original_router") else [])]

    routes = [r for r in api_routes(edge.routes) if r.path in PROTOCOLS]
    assert {r.path for r in routes} == PROTOCOLS
    for route in routes:
        assert sync_calls(route.dependant) == [], route.path
