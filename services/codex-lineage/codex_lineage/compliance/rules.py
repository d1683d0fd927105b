"""The compliance rule files: one YAML file per framework (policy/compliance/<framework>.yaml), each rule naming
a check (compliance.checks) and its parameters. A file that does not parse, or a rule that is not valid, is
refused with the file and line (RulesError); the caller keeps the rules it had."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ID = r"^[a-z0-9][a-z0-9.-]{0,63}$"
REPO = Path(__file__).resolve().parents[4]


class RulesError(ValueError):
    """A rule file that cannot be used, with its path and line."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID)
    ref: str = Field(min_length=1, max_length=120, description="The article or building block, e.g. 'Art. 19(1)'")
    title: str = Field(min_length=1, max_length=200)
    requirement: str = Field(default="", max_length=2000, description="What the text asks, in a sentence or two")
    check: str = Field(min_length=1, description="The check that gathers the evidence (compliance.checks)")
    params: dict[str, Any] = Field(default_factory=dict)
    line: int = Field(default=0, exclude=True)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    framework: str = Field(pattern=ID)
    title: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    rules: list[Rule] = Field(min_length=1)
    source: str = Field(default="", exclude=True)
    digest: str = Field(default="", exclude=True)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line (1-based) of every mapping as '__line__'."""


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    value = loader.construct_mapping(node, deep=True)
    value["__line__"] = node.start_mark.line + 1
    return value


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _line_of(data: Any, loc: tuple[Any, ...]) -> int:
    """The line of the deepest mapping on the error's path."""
    line, node = int(data.get("__line__", 1)) if isinstance(data, dict) else 1, data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "__line__" in node:
            line = int(node["__line__"])
    return line


def parse(path: Path, checks: frozenset[str]) -> RuleSet:
    raw = path.read_bytes()
    try:
        data = yaml.load(raw, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = (f" ({exc.context} at line {exc.context_mark.line + 1})"
                   if exc.context and exc.context_mark and exc.context_mark is not mark else "")
        raise RulesError(f"{path}:{line}: not valid YAML: {exc.problem or exc}{context}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}:1: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{path}:1: a rule file is a mapping with framework, title, version and rules")
    try:
        rule_set = RuleSet.model_validate(_strip(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RulesError(f"{path}:{_line_of(data, tuple(err['loc']))}: {where}: {err['msg']}") from None
    seen: set[str] = set()
    for index, rule in enumerate(rule_set.rules):
        line = _line_of(data, ("rules", index))
        rule.line = line
        if rule.check not in checks:
            raise RulesError(f"{path}:{line}: rule {rule.id!r}: unknown check {rule.check!r} (known: "
                             f"{', '.join(sorted(checks))})")
        if rule.id in seen:
            raise RulesError(f"{path}:{line}: rule {rule.id!r} is defined twice")
        seen.add(rule.id)
    return rule_set.model_copy(update={"source": str(path), "digest": "sha256:" + hashlib.sha256(raw).hexdigest()})


def resolve(path: str) -> Path:
    """A relative path: the working directory's, else the repository's."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists() or not (REPO / candidate).exists():
        return candidate
    return REPO / candidate


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a rule file is added, removed or edited (names, sizes, modification times)."""
    try:
        files = sorted(directory.glob("*.yaml"))
        return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError:
        return ()


def load_all(directory: Path, checks: frozenset[str]) -> list[RuleSet]:
    """Every *.yaml in the directory, ordered by file name; one framework per file."""
    if not directory.is_dir():
        raise RulesError(f"{directory}:0: the compliance rule directory does not exist (MOE_COMPLIANCE_RULES_DIR)")
    sets: list[RuleSet] = []
    for path in sorted(directory.glob("*.yaml")):
        rule_set = parse(path, checks)
        if any(s.framework == rule_set.framework for s in sets):
            raise RulesError(f"{path}:1: framework {rule_set.framework!r} is already defined by another file")
        sets.append(rule_set)
    if not sets:
        raise RulesError(f"{directory}:0: no rule files (*.yaml)")
    return sets
