"""GET /v1/models and /v1/models/{id}: one body both SDKs read, OpenAI's list plus Anthropic's paging and
model fields (type, display_name, created_at); ids are the modes and moe-orchestrator@<expert template>: the
file's templates and the caller's tenant's own (published by the control plane, moe_core.llm.published_templates; a
tenant's template of a file template's name is listed once, as the tenant's). Another tenant's are unknown (404);
the tenant's templates cannot be read (Redis down) is a 503 `templates_unavailable`, as for a chat request."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter

from gateway import template_select
from gateway.deps import Edge, EdgeParts, VerifiedKey
from gateway.protocols.entry import Protocol
from gateway.protocols.openai.api import MODES
from moe_core.access.keystore import ApiKey
from moe_core.llm.model_map import resolve, split_template
from moe_core.runtime.openai_error import OpenAIError

router = APIRouter(tags=["models"])
CREATED = int(time.time())
CREATED_AT = datetime.fromtimestamp(CREATED, UTC).isoformat().replace("+00:00", "Z")


@router.get("/v1/models")
async def list_models(key: VerifiedKey, edge: EdgeParts) -> dict[str, object]:
    templates = await _templates(edge, key)
    ids = [m for m in [*MODES, *template_select.model_ids(templates)] if _allowed(key, m)]  # also mode@template
    if not ids:
        return {"object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}
    return {"object": "list", "data": [_model(m, templates) for m in ids], "has_more": False, "first_id": ids[0],
            "last_id": ids[-1]}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, key: VerifiedKey, edge: EdgeParts) -> dict[str, object]:
    found = resolve(model_id, edge.settings.model_map)  # a client's own id (model map), @template
    if found is None:
        raise OpenAIError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    mode, _base, name = found
    templates = await _templates(edge, key) if name is not None else edge.chat.templates
    if name is not None and name not in templates:
        raise template_select.not_found(name, templates, "model")
    return {**_model(f"{mode}@{name}" if name else mode, templates), "id": model_id, "display_name": model_id}


def _allowed(key: ApiKey, model_id: str) -> bool:
    """What a chat request with this id may use (ChatService.open's check): the id itself or its mode."""
    return key.allows(model_id) or key.allows(split_template(model_id)[0])


async def _templates(edge: Edge, key: ApiKey) -> template_select.Templates:
    """The file's templates and the key's tenant's own (the tenant its chat requests run for); the tenant's win."""
    return {**edge.chat.templates, **await edge.chat.templates.of_tenant(key.default_tenant)}


def _model(mode: str, templates: template_select.Templates) -> dict[str, object]:
    """A model entry in the OpenAI shape, with Anthropic's fields (type, display_name, created_at) too."""
    return {"id": mode, "object": "model", "created": CREATED, "owned_by": "moe-sovereign", "type": "model",
            "display_name": mode, "created_at": CREATED_AT,
            "description": template_select.describe(mode, templates)}


PROTOCOL = Protocol("models", "/v1/models", router)
