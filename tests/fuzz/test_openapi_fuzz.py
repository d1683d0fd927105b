"""Schemathesis over the gateway's and the control plane's OpenAPI on real processes with a valid (admin)
key: every operation (both APIs, feedback, graph, admin, knowledge, usage, audit) gets generated valid and invalid
input; no response is a 5xx and every error is in the API's own envelope (Anthropic's under
/v1/messages, OpenAI's elsewhere). A second run puts a lone UTF-16 surrogate into one string or key of
every generated body (tests/fuzz/lone_surrogates.py): always a 400 naming where it is. The routes that read
their body themselves declare none in the document, so their request models are added to it here.
Bounded: MOE_FUZZ_EXAMPLES per operation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from control_plane.app import create_app as control_plane_app
from control_plane.feedback import FeedbackBody
from control_plane.knowledge.exchange import ExportBody
from control_plane.knowledge.graph_api import DecisionBody, IngestBody
from control_plane.memory.api import SearchBody, TextDocument
from control_plane.settings import ControlPlaneSettings
from gateway.app import create_app
from gateway.protocols.anthropic.api import CountTokensRequest, MessagesRequest
from gateway.protocols.openai.api import ChatCompletionRequest
from gateway.protocols.responses.api import ResponsesRequest
from gateway.settings import GatewaySettings
from moe_core.llm.unicode_text import find_lone_surrogate
from tests.fuzz.lone_surrogates import with_lone_surrogate
from tests.support.fleet import ServiceProcess
from tests.support.split_routes import is_edge

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("MOE_FUZZ_EXAMPLES", "12"))
BODIES: dict[str, type[BaseModel]] = {"/v1/chat/completions": ChatCompletionRequest, "/v1/messages": MessagesRequest,
                                      "/v1/messages/count_tokens": CountTokensRequest,
                                      "/v1/responses": ResponsesRequest, "/v1/feedback": FeedbackBody,
                                      "/v1/memory/ingest": IngestBody, "/v1/knowledge/export": ExportBody,
                                      "/graph/quarantine/{item_id}/approve": DecisionBody,
                                      "/graph/quarantine/{item_id}/reject": DecisionBody,
                                      "/v1/memory/documents/{document_id}/approve": DecisionBody,
                                      "/v1/memory/documents/{document_id}/reject": DecisionBody,
                                      "/v1/memory/documents": TextDocument, "/v1/memory/search": SearchBody}
BUNDLE = json.loads((Path(__file__).resolve().parents[2] / "docs" / "knowledge-bundle.schema.json").read_text())


def _document() -> dict[str, Any]:
    document = create_app(GatewaySettings(), manage_broker=False).openapi()  # the edge's and the control plane's
    control = control_plane_app(ControlPlaneSettings(), manage_broker=False).openapi()
    document["paths"].update(control["paths"])
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(control.get("components", {}).get("schemas", {}))
    components.update({k: json.loads(json.dumps(v).replace("#/$defs/", "#/components/schemas/"))
                       for k, v in BUNDLE.get("$defs", {}).items()})
    for path, model in BODIES.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        document["paths"][path]["post"]["requestBody"] = {"required": True,
                                                          "content": {"application/json": {"schema": schema}}}
    bundle = {k: v for k, v in BUNDLE.items() if k not in ("$defs", "$schema", "$id")}
    document["paths"]["/v1/knowledge/imports"]["post"]["requestBody"] = {
        "required": True, "content": {"application/json": {"schema": json.loads(
            json.dumps(bundle).replace("#/$defs/", "#/components/schemas/"))}}}
    return document


schema = schemathesis.openapi.from_dict(_document())
# The operations that read a JSON body, in the fuzzing phase only: its cases come from strategies, which the
# hook below changes (the examples' and coverage's fixed cases are the first test's). A config of its own.
with_bodies = schemathesis.openapi.from_dict(_document()).include(method=["POST", "PATCH"])
with_bodies.config.phases.update(phases=["fuzzing"])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_5xx_and_every_error_in_its_envelope(case: Any, fuzz_gateway: ServiceProcess,
                                                fuzz_control_plane: ServiceProcess, fuzz_key: str) -> None:
    response = case.call(base_url=_base(case, fuzz_gateway, fuzz_control_plane),
                         headers={"Authorization": f"Bearer {fuzz_key}"}, timeout=60)
    assert response.status_code < 500, _where(case, response)
    if response.status_code >= 400:
        _error(case, response)


def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """The schemathesis hook: every generated body gets a lone surrogate in one of its strings or keys."""
    return with_lone_surrogate(body)


@with_bodies.hooks.apply(flatmap_body)
@with_bodies.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_a_lone_surrogate_anywhere_in_a_body_is_400_naming_where(case: Any, fuzz_gateway: ServiceProcess,
                                                                 fuzz_control_plane: ServiceProcess,
                                                                 fuzz_key: str) -> None:
    response = case.call(base_url=_base(case, fuzz_gateway, fuzz_control_plane),
                         headers={"Authorization": f"Bearer {fuzz_key}"}, timeout=60)
    expected = find_lone_surrogate(case.body) if isinstance(case.body, (dict, list, str)) else None
    if expected is None:  # a body without a string or key to put one into (a number, [], {})
        if response.status_code >= 400:
            _error(case, response)
        return
    message, code = _error(case, response)
    # The edge refuses it before any route or key check; a limit it checks first (a NUL in an earlier
    # string, too many stop sequences) may answer instead, naming that limit.
    assert response.status_code in (400, 413), _where(case, response)
    if code == "invalid_text" or "lone UTF-16 surrogate" in message:
        assert message == expected, _where(case, response)
    else:
        assert "NUL" in message or "MOE_" in message, _where(case, response)


def _base(case: Any, gateway: ServiceProcess, control_plane: ServiceProcess) -> str:
    """The service that serves the operation: the gateway its protocols, the control plane the rest."""
    return gateway.url if is_edge(case.operation.path) else control_plane.url


def _error(case: Any, response: Any) -> tuple[str, str | None]:
    """Not a 5xx, and in the API's own envelope: the message and (OpenAI) code."""
    where = _where(case, response)
    assert response.status_code < 500, where
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict) and isinstance(error.get("message"), str) and error.get("type"), where
    if case.path.startswith("/v1/messages"):
        assert body.get("type") == "error", where
        return error["message"], None
    assert error["message"] and {"param", "code"} <= set(error), where
    return error["message"], error["code"]


def _where(case: Any, response: Any) -> str:
    return f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
