"""Which expert template (moe_core.templates) a request runs with: the model id's suffix
(`moe-orchestrator@<name>`, also after a mode or a mapped client id: `moe-orchestrator-code@<name>`), else
the `X-MOE-Template` header, else the API key's default template, else none (the global assignments).

A name that is not configured is a 404 `template_not_found` in the API's envelope; a model suffix and a
header naming different templates are a 400 (one request, one set of models).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from gateway.model_map import resolve_mode
from moe_core.inference import InferenceConfig
from moe_core.modes import DEFAULT_MODE, MODES
from moe_core.openai_error import OpenAIError
from moe_core.settings import FleetSettings
from moe_core.templates import ExpertTemplate

TEMPLATE_HEADER = "x-moe-template"
Templates = Mapping[str, ExpertTemplate]


def load(settings: FleetSettings) -> dict[str, ExpertTemplate]:
    """The configured templates, checked against the inference servers (TemplateError: start-up fails)."""
    return InferenceConfig.from_settings(settings).templates


def split_template(model: str) -> tuple[str, str | None]:
    """`moe-orchestrator-code@small` -> ("moe-orchestrator-code", "small"); no suffix -> (model, None)."""
    base, at, name = model.rpartition("@")
    if not at or not base or not name:
        return model, None
    return base, name


def resolve(model: str, model_map: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    """(mode, the model id without the template, the template named in it) or None (an unknown id). An id
    that is itself a mode or an exact model-map key is taken whole; else an `@<name>` suffix is a template."""
    if model in MODES or model in model_map:
        return resolve_mode(model, model_map) or model, model, None
    base, name = split_template(model)
    mode = resolve_mode(base, model_map)
    return (mode, base, name) if mode is not None else None


def model_ids(templates: Templates) -> list[str]:
    """The ids GET /v1/models lists for the templates (every mode takes the suffix too)."""
    return [f"{DEFAULT_MODE}@{name}" for name in templates]


def describe(model_id: str, templates: Templates) -> str:
    """A model id's description: its mode's, and its template's when it names one."""
    mode, name = split_template(model_id)
    if name is None or mode not in MODES:
        return MODES[model_id].description
    template = templates.get(name)
    text = f"{MODES[mode].description}; expert template '{name}'"
    return f"{text}: {template.description}" if template is not None and template.description else text


def header_template(request: Request) -> str | None:
    value = request.headers.get(TEMPLATE_HEADER, "").strip()
    return value or None


def not_found(name: str, templates: Templates, param: str) -> OpenAIError:
    known = ", ".join(sorted(templates)) or "none is configured"
    return OpenAIError(404, f"The expert template '{name}' does not exist (templates: {known})", param=param,
                       code="template_not_found")


def choose(from_model: str | None, from_header: str | None, key_default: str | None,
           templates: Templates) -> str | None:
    """The request's template name (checked), or None for the global assignments."""
    if from_model and from_header and from_model != from_header:
        raise OpenAIError(400, f"The model id names the template '{from_model}' and the {TEMPLATE_HEADER} header "
                               f"'{from_header}': give one", param="model", code="template_conflict")
    for name, param in ((from_model, "model"), (from_header, TEMPLATE_HEADER)):
        if name:
            if name not in templates:
                raise not_found(name, templates, param)
            return name
    if key_default is not None and key_default not in templates:  # the configuration dropped it since
        raise OpenAIError(404, f"This API key's default expert template '{key_default}' does not exist any "
                               "more; pick one per request or ask an admin to change the key",
                          param="model", code="template_not_found")
    return key_default
