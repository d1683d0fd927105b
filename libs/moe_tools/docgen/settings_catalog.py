"""Which settings each service of the fleet reads, found in its code: every pydantic-settings class
(env prefix MOE_) its package defines or imports. Used by the generated settings reference
(docs/settings.md) and by the tests that check the hand-written settings tables against the code.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from pydantic import SecretStr
from pydantic.aliases import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

import moe_core.stage.registry as stage_registry
from moe_core.runtime.settings import FleetSettings

SERVICES = Path("services")


@dataclass(frozen=True)
class Setting:
    field: str
    env: tuple[str, ...]  # the environment variables that set it; the first is the documented one
    default: Any
    description: str
    declared_by: str  # module.Class that declares the field with this default

    @property
    def name(self) -> str:
        return self.env[0]


def env_names(name: str, info: FieldInfo, prefix: str = "MOE_") -> tuple[str, ...]:
    """The variables pydantic-settings reads for a field: its validation aliases, else prefix + NAME."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        choices = tuple(c for c in alias.choices if isinstance(c, str) and c.isupper())
        if choices:
            return choices
    elif isinstance(alias, str):
        return (alias.upper(),)
    return (f"{prefix}{name.upper()}",)


def default_of(info: FieldInfo) -> Any:
    """The default as a plain value: a path as its text, a secret as its value (defaults hold none)."""
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, PurePath):
        return str(value)
    return value


def render_default(value: Any) -> str:
    """A default as the generated docs write it (the tests read hand-written defaults the same way)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, int | float):
        return f"`{value}`"
    if isinstance(value, str):
        return f"`{value}`" if value else "empty"
    if isinstance(value, dict | list | tuple) and not value:
        return f"`{json.dumps(value)}`" if isinstance(value, dict) else "`[]`"
    return f"`{json.dumps(value, default=str)}`"


def _declares(cls: type, field: str) -> bool:
    return field in inspect.get_annotations(cls)


def _declaring_class(cls: type[BaseSettings], field: str) -> type:
    return next(c for c in cls.__mro__ if _declares(c, field))


def _description(cls: type[BaseSettings], field: str) -> str:
    """The field's description, or the one of the class it overrides (a service's own port, name)."""
    for c in cls.__mro__:
        info = getattr(c, "model_fields", {}).get(field)
        if info is not None and info.description:
            return " ".join(info.description.split())
    return ""


def settings_of(classes: list[type[BaseSettings]]) -> dict[str, Setting]:
    """PREFIX_FIELD -> setting over several classes. A field declared by more than one class (an override,
    or two mixins) takes the most specific declaration; unrelated declarations must agree on the default."""
    found: dict[str, tuple[type, Setting]] = {}
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            owner, key = _declaring_class(cls, name), f"{prefix}{name.upper()}"
            setting = Setting(name, env_names(name, info, prefix), default_of(info), _description(cls, name),
                              f"{owner.__module__}.{owner.__qualname__}")
            if key not in found:
                found[key] = (owner, setting)
                continue
            known_owner, known = found[key]
            if issubclass(owner, known_owner):
                found[key] = (owner, setting)
            elif not issubclass(known_owner, owner):  # two unrelated classes: one default, every variable
                if known.default != setting.default:
                    raise ValueError(f"{key}: default {known.default!r} in {known.declared_by}, "
                                     f"{setting.default!r} in {setting.declared_by}")
                env = known.env + tuple(v for v in setting.env if v not in known.env)
                found[key] = (known_owner, replace(known, env=env))
    return {key: setting for key, (_, setting) in found.items()}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _settings_classes_named(path: Path, root: Path) -> list[tuple[str, str]]:
    """(module, class name) of every *Settings class a source file defines or imports."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and node.name.endswith("Settings"):
            out.append((module, node.name))
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{source}" if source else base
            out += [(source, a.name) for a in node.names if a.name.endswith("Settings")]
    return out


def settings_classes(package_dir: Path) -> list[type[BaseSettings]]:
    """The MOE_ settings classes a package defines or imports (its modules are not imported: only the
    modules that define those classes)."""
    found: dict[str, type[BaseSettings]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        for module, name in _settings_classes_named(path, package_dir.parent):
            cls = getattr(importlib.import_module(module), name, None)
            if (isinstance(cls, type) and issubclass(cls, BaseSettings)
                    and str(cls.model_config.get("env_prefix", "")).startswith("MOE_") and cls.model_fields):
                found.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    return [found[k] for k in sorted(found)]


@cache
def fleet() -> dict[str, Setting]:
    """What every service reads (moe_core.runtime.settings.FleetSettings)."""
    return settings_of([FleetSettings])


@cache
def service(name: str, repo: Path = Path()) -> dict[str, Setting]:
    """Everything the service reads, FleetSettings included."""
    entry = stage_registry.service(name)
    return settings_of(settings_classes(repo / SERVICES / entry.name / entry.package))


def specific(name: str, repo: Path = Path()) -> dict[str, Setting]:
    """What the service reads beyond FleetSettings, and the FleetSettings it sets otherwise (its name, port)."""
    common = fleet()
    return {k: s for k, s in service(name, repo).items() if k not in common or s.default != common[k].default}


def every_variable(repo: Path = Path()) -> dict[str, list[Setting]]:
    """Variable -> how each service that reads it declares it (one entry per distinct declaration)."""
    out: dict[str, list[Setting]] = {}
    for entry in stage_registry.FLEET:
        for setting in service(entry.name, repo).values():
            for var in setting.env:
                if setting not in out.setdefault(var, []):
                    out[var].append(setting)
    return out
