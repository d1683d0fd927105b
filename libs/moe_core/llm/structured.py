"""Structured output (OpenAI `response_format` json_object / json_schema, the Responses API's `text.format`): the
client's format read from the wire, and the check of an answer against it.

The format travels in GenerationParams.response_format. Only the model call that writes the final answer is
constrained to it (a direct task's one expert call, else the merger's judge); the experts feeding the judge
answer in prose. Nothing after that call rewrites the text (no plan prefix, gaps note, mode shaping or computed
values; the critic and the output guardrails do not turn it into prose), and the gateway checks the answer
against the format before the client sees it (`unmet`)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

import regex
from jsonschema import Draft202012Validator, SchemaError, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend, validator_for

from moe_core.contracts import Answer, ErrorInfo, ResponseFormat
from moe_core.runtime.openai_error import OpenAIError

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_SCHEMA_CHARS = 32_768  # the schema as compact JSON; it goes into the judge's prompt and every expert task
UNMET = "response_format_unmet"  # an Answer's error code: a complete answer that does not match (a 422)
JSON_OBJECT: dict[str, Any] = {"type": "object"}
REGEX_TIMEOUT_S = 0.05  # one `pattern` against one string of the answer: the client's regex runs on the model's text


def from_wire(value: Any, param: str, *, nested: bool = True) -> ResponseFormat | None:
    """The client's format: None for `text` (or none). `nested`: chat completions' shape, the schema under
    `json_schema` ({"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}); else the
    Responses API's, the same fields beside `type`. Anything else is a 400 naming `param`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OpenAIError(400, f"{param} must be an object with a type", param=param)
    kind = value.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object", json_schema=dict(JSON_OBJECT))
    if kind != "json_schema":
        raise OpenAIError(400, f"{param}.type must be text, json_object or json_schema, got {kind!r}", param=param)
    where = f"{param}.json_schema" if nested else param
    spec = value.get("json_schema") if nested else value
    if not isinstance(spec, dict):
        raise OpenAIError(400, f"{where} is required for type json_schema (name, schema)", param=where)
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise OpenAIError(400, f"{where}.name must match ^[a-zA-Z0-9_-]{{1,64}}$, got {name!r}",
                          param=f"{where}.name")
    schema = spec.get("schema", JSON_OBJECT)
    if not isinstance(schema, dict):
        raise OpenAIError(400, f"{where}.schema must be a JSON Schema object", param=f"{where}.schema")
    if len(json.dumps(schema, separators=(",", ":"))) > MAX_SCHEMA_CHARS:
        raise OpenAIError(400, f"{where}.schema is too large: more than {MAX_SCHEMA_CHARS} characters as JSON",
                          param=f"{where}.schema")
    _applicable(schema, f"{where}.schema")
    strict, description = spec.get("strict"), spec.get("description")
    if strict is not None and not isinstance(strict, bool):
        raise OpenAIError(400, f"{where}.strict must be a boolean", param=f"{where}.strict")
    if description is not None and not isinstance(description, str):
        raise OpenAIError(400, f"{where}.description must be a string", param=f"{where}.description")
    return ResponseFormat(type="json_schema", name=name, json_schema=schema, strict=strict, description=description)


def _applicable(schema: dict[str, Any], param: str) -> None:
    """A schema an answer can be checked against, else a 400 naming `param`: a valid JSON Schema (its `$schema`
    a known draft or none), every `$ref` to a place in the schema itself (no remote or missing references: they
    would fail the check, not the request), not referring to itself without end."""
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
    except SchemaError as exc:
        raise OpenAIError(400, f"{param} is not a valid JSON Schema: {exc.message}", param=param) from None
    except Exception as exc:  # e.g. a $schema that is no string
        raise OpenAIError(400, f"{param} is not a valid JSON Schema: {type(exc).__name__}", param=param) from None
    for ref in _refs(schema):
        if not (ref == "#" or ref.startswith("#/")) or _pointer(schema, ref) is _NOWHERE:
            raise OpenAIError(400, f"{param}: $ref {ref[:200]!r} points to nothing in the schema (only references "
                                   "within it, # or #/..., are followed)", param=param)
    try:
        samples: tuple[Any, ...] = ({}, [], None, "", 0)
        for sample in samples:
            _validator(schema).is_valid(sample)
    except RecursionError:
        raise OpenAIError(400, f"{param} refers to itself without end", param=param) from None
    except Exception as exc:
        raise OpenAIError(400, f"{param} cannot be applied: {type(exc).__name__}", param=param) from None


_NOWHERE = object()


def _refs(node: Any) -> list[str]:
    """Every $ref / $dynamicRef string in the schema."""
    if isinstance(node, dict):
        own = [v for k, v in node.items() if k in ("$ref", "$dynamicRef") and isinstance(v, str)]
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _pointer(root: Any, ref: str) -> Any:
    """What a local reference (#/a/b) points to in `root`, or _NOWHERE."""
    node = root
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _NOWHERE
    return node


def to_wire(fmt: ResponseFormat | None, *, nested: bool = True) -> dict[str, Any]:
    """The format as the client sent it (echoed in a Responses API object's `text.format`)."""
    if fmt is None:
        return {"type": "text"}
    if fmt.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.json_schema, "strict": fmt.strict}
    if fmt.description is not None:
        spec["description"] = fmt.description
    return {"type": "json_schema", "json_schema": spec} if nested else {"type": "json_schema", **spec}


def _search(pattern: str, text: str) -> bool:
    """A schema's regex on the answer's text, in bounded time (the `regex` module's timeout): a client's pattern
    that backtracks without end (ReDoS) cannot hold the gateway's event loop or the merger."""
    return regex.search(pattern, text, timeout=REGEX_TIMEOUT_S) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: dict[str, Any]) -> Any:
    if not validator.is_type(instance, "object"):
        return
    named, patterns = schema.get("properties", {}), "|".join(schema.get("patternProperties", {}))
    extras = sorted(k for k in instance if k not in named and not (patterns and _search(patterns, k)))
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, extras))} {verb} "
                              "unexpected)")


# jsonschema's own keywords with Python's `re` (no timeout) replaced; unevaluatedProperties with
# patternProperties still uses `re` (rare in response formats)
_BOUNDED = {"pattern": _pattern, "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties}


def _validator(schema: dict[str, Any]) -> Any:
    return extend(validator_for(schema, default=Draft202012Validator), _BOUNDED)(schema)


def mismatch(content: str, fmt: ResponseFormat) -> str | None:
    """Why `content` is not an answer in the format (None: it is): not JSON, not an object (json_object), or where
    it breaks the schema."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        return f"the answer is not JSON ({exc.msg} at character {exc.pos})"
    if fmt.type == "json_object":
        return None if isinstance(value, dict) else f"the answer is JSON but not an object ({type(value).__name__})"
    try:
        error = best_match(_validator(fmt.json_schema).iter_errors(value))
    except RecursionError:  # a schema that refers to itself without end on this value: it cannot be checked
        return "the answer could not be checked: the schema refers to itself without end"
    except TimeoutError:
        return "the answer could not be checked: a pattern of the schema took too long on it"
    except Exception as exc:  # never a 500: the request was checked, this is the answer's failure to be checked
        return f"the answer could not be checked against the schema: {type(exc).__name__}"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(the whole value)"
    return f"the answer does not match the schema {fmt.name!r} at {where}: {error.message[:300]}"


def checked(answer: Answer, fmt: ResponseFormat | None) -> Answer:
    """The answer as the client may get it: a complete answer (finish stop) that does not match the format becomes
    the error `response_format_unmet` (its text on the record in error.detail, not in the content); a deadline's
    partial answer that does not match, a `deadline_exceeded` error. Untouched: no format, an error, tool calls, an
    answer cut at max_tokens (returned as produced with finish_reason length, as OpenAI does) and a guardrail's
    refusal (content_filter)."""
    if fmt is None or answer.error is not None or answer.tool_calls or answer.finish_reason not in ("stop", "deadline"):
        return answer
    reason = mismatch(answer.content, fmt)
    if reason is None:
        return answer
    if answer.finish_reason == "deadline":
        error = ErrorInfo(code="deadline_exceeded", message="The request did not finish in time: no answer in the "
                          "requested format.", detail=reason)
        return answer.model_copy(update={"content": "", "error": error})
    error = ErrorInfo(code=UNMET, message=f"the model's answer does not match the requested response_format: "
                      f"{reason}", detail=f"{reason}; answer: {answer.content[:1000]}")
    return answer.model_copy(update={"content": "", "error": error, "finish_reason": "error"})


def constraint(fmt: ResponseFormat | None) -> dict[str, Any]:
    """The inference client's arguments that constrain a call to the format (moe_core.llm.inference: an OpenAI server's
    response_format json_schema, an Ollama server's format); none without one."""
    if fmt is None:
        return {}
    return {"json_schema": fmt.json_schema, "schema_name": fmt.name, "strict": fmt.strict}


JSON_OBJECT_RULE = "Answer with one JSON object only: no text before or after it, no code fence."
JSON_SCHEMA_RULE = ("Answer with one JSON value only, no text before or after it and no code fence, matching the JSON "
                    "Schema {name}{about}: {schema}")


def instruction(fmt: ResponseFormat) -> str:
    """What the constrained call is told besides the server-side constraint: JSON only, and the schema (its
    descriptions say what each field means). The prompt template (run_versions.prompt_used) is the rule without the
    client's schema (`template`)."""
    if fmt.type == "json_object":
        return JSON_OBJECT_RULE
    about = f" ({fmt.description})" if fmt.description else ""
    schema = json.dumps(fmt.json_schema, separators=(",", ":"), ensure_ascii=False)
    return JSON_SCHEMA_RULE.format(name=repr(fmt.name), about=about, schema=schema)


def template(fmt: ResponseFormat) -> str:
    """The instruction's template, the same for every schema: what a run records as its prompt version."""
    return JSON_OBJECT_RULE if fmt.type == "json_object" else JSON_SCHEMA_RULE
