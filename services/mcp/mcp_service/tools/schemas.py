"""A caller's JSON Schema, checked and applied with no reference leaving it: only local references
(`#`, `#/json/pointer`, `#anchor`) are followed. A `$ref` to a URL, a file or another document is refused
before validation starts, and the validator's registry retrieves nothing (jsonschema would otherwise fetch
`http(s)://` and `file://` references with urllib: a server-side request forgery and a local file read)."""

from __future__ import annotations

from typing import Any, NoReturn

from jsonschema import exceptions as schema_errors
from jsonschema import validators
from referencing import Registry
from referencing.exceptions import Unresolvable

from mcp_service.tools.base import ToolError

MAX_ERRORS = 20
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _never_retrieve(uri: str) -> NoReturn:
    raise LookupError(f"retrieving {uri!r} is not allowed")  # referencing reports it as Unretrievable


NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_never_retrieve)  # type: ignore[call-arg]


def outside_references(schema: Any) -> list[str]:
    """Every reference in the schema that does not point into the schema itself."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [v for k, v in node.items() if k in REFERENCE_KEYWORDS and isinstance(v, str)
                      and not v.startswith("#")]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def schema_errors_of(schema: dict[str, Any], document: Any) -> list[str]:
    """The document's errors against the schema (at most MAX_ERRORS); an invalid schema, or one that refers
    outside itself, is a ToolError."""
    try:
        cls = validators.validator_for(schema)
        cls.check_schema(schema)
    except schema_errors.SchemaError as exc:
        raise ToolError("input_schema_invalid", f"the given JSON Schema is invalid: {exc.message[:300]}") from None
    outside = outside_references(schema)
    if outside:
        raise ToolError("input_schema_invalid", f"the schema refers to {outside[0][:200]!r}: only references within "
                                                "the given schema ('#/...') are followed, never URLs or files")
    out = []
    try:
        for error in cls(schema, registry=NO_RETRIEVAL).iter_errors(document):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            out.append(f"{where}: {error.message[:200]}")
            if len(out) >= MAX_ERRORS:
                break
    except Unresolvable as exc:  # '#/$defs/missing', or a base URI ($id) that moves a '#' reference elsewhere
        ref = getattr(exc, "ref", None) or getattr(getattr(exc, "_wrapped", None), "ref", "?")
        raise ToolError("input_schema_invalid", f"the schema's reference {str(ref)[:200]!r} cannot be resolved "
                                                "within the given schema") from None
    return out
