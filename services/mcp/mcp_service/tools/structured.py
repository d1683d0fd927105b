"""structured_validate and json_query. Parsers run with their dangerous features off: no NaN in JSON,
no YAML aliases or tags beyond the safe set, no XML DTDs (so no entity expansion, no external entities), no
JSON Schema reference outside the given schema (tools/schemas.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import defusedxml.ElementTree as SafeXML
import yaml
from defusedxml import DefusedXmlException

from mcp_service.tools.base import MAX_DIGITS, ToolError, ToolOutput, wrong
from mcp_service.tools.schemas import MAX_ERRORS, schema_errors_of

MAX_CSV_ROWS = 100_000


class NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors' aliases: a few aliases can expand into billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"a {type(value).__name__} value" if value is not None else "null"


def structured_validate(args: dict[str, Any]) -> ToolOutput:
    fmt, text = args["format"], args["text"]
    schema = args.get("schema")
    if schema is not None and fmt not in ("json", "yaml"):
        raise wrong("a schema can be checked only for json or yaml")
    errors: list[str] = []
    summary: dict[str, Any] = {}
    document: Any = None
    try:
        if fmt == "json":
            document = load_json(text)
            summary["shape"] = _shape(document)
        elif fmt == "yaml":
            docs = list(yaml.load_all(text, Loader=NoAliasLoader))
            document = docs[0] if len(docs) == 1 else docs
            summary.update(documents=len(docs), shape=_shape(document))
        elif fmt == "xml":
            summary.update(_xml(text))
        else:
            errors, csv_summary = _csv(text, args.get("delimiter", ","))
            summary.update(csv_summary)
    except (ValueError, yaml.YAMLError, SafeXML.ParseError, DefusedXmlException, csv.Error) as exc:
        errors.append(_first_line(exc))
    except RecursionError:
        errors.append("nested too deeply")
    if schema is not None and not errors:
        errors.extend(schema_errors_of(schema, document))
    valid = not errors
    result = {"format": fmt, "valid": valid, "errors": errors[:MAX_ERRORS], "summary": summary}
    what = fmt.upper()
    if valid:
        detail = summary.get("shape") or ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, list))
        return ToolOutput(f"The {what} is valid{' against the schema' if schema else ''} ({detail}).", result)
    return ToolOutput(f"The {what} is not valid: {errors[0]}", result)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:300]


def _xml(text: str) -> dict[str, Any]:
    root = SafeXML.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    elements, depth = 0, 0
    stack = [(root, 1)]
    while stack:
        node, level = stack.pop()
        elements += 1
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in node)
    return {"root": root.tag, "elements": elements, "depth": depth}


def _csv(text: str, delimiter: str) -> tuple[list[str], dict[str, Any]]:
    csv.field_size_limit(len(text) + 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    errors: list[str] = []
    rows = 0
    width: int | None = None
    header: list[str] = []
    for row in reader:
        rows += 1
        if rows > MAX_CSV_ROWS:
            raise ToolError("result_too_large", f"more than {MAX_CSV_ROWS} rows")
        if width is None:
            width, header = len(row), row[:50]
        elif len(row) != width and len(errors) < MAX_ERRORS:
            errors.append(f"row {rows} has {len(row)} fields, expected {width}")
    return errors, {"rows": rows, "columns": width or 0, "header": header}


# --- json_query ----------------------------------------------------------------------------------

_STEP = re.compile(r"""\.?([A-Za-z_$][\w$-]*)|\[(-?\d{1,9})\]|(\[\*\]|\.\*)"""
                   r"""|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*'([^']*)'\s*\]""")


def parse_path(path: str) -> list[str | int | None]:
    """a.b[0]["c d"][*] -> ['a', 'b', 0, 'c d', None]; None is a wildcard. A leading $ is the root."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    steps: list[str | int | None] = []
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if not match or match.end() == pos:
            raise wrong(f"cannot read the path at {path[pos:pos + 20]!r}")
        key, index, star, quoted, single = match.groups()
        if index is not None:
            steps.append(int(index))
        elif star is not None:
            steps.append(None)
        elif quoted is not None:
            steps.append(json.loads(f'"{quoted}"'))
        else:
            steps.append(key if key is not None else single)
        pos = match.end()
    return steps


def _step(values: list[Any], step: str | int | None) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if step is None:
            out.extend(value.values() if isinstance(value, dict) else value if isinstance(value, list) else [])
        elif isinstance(step, int):
            if isinstance(value, list) and -len(value) <= step < len(value):
                out.append(value[step])
        elif isinstance(value, dict) and step in value:
            out.append(value[step])
    return out


def json_query(args: dict[str, Any]) -> ToolOutput:
    data = args["data"]
    if isinstance(data, str):
        try:
            data = load_json(data)
        except (ValueError, RecursionError) as exc:
            raise wrong(f"data is a string but not a JSON document: {_first_line(exc)}") from None
    steps = parse_path(args["path"])
    values = [data]
    for step in steps:
        values = _step(values, step)
    wildcard = None in steps
    result: dict[str, Any] = {"path": args["path"], "found": bool(values), "count": len(values)}
    if wildcard:
        result["values"] = values
    elif values:
        result["value"] = values[0]
    rendered = json.dumps(values if wildcard else values[0] if values else None, ensure_ascii=False)
    if len(rendered) > MAX_DIGITS * 50:
        rendered = rendered[:200] + "…"
    if not values:
        return ToolOutput(f"Nothing is at path {args['path']!r}.", result)
    return ToolOutput(f"{args['path'] or '$'} = {rendered[:500]}", result)
