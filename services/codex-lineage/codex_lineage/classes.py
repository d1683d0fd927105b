"""Data classes (policy/data-classes.yaml, MOE_DATA_CLASSES_FILE): the class of each catalog entry and of each
tenant's requests, and what a request's lineage reached that its class does not allow. Pure: the file's text in,
answers out (the service re-reads the file when it changes; a broken file keeps the previous one in force)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class DataClassError(ValueError):
    """The data-class file does not parse or names an unknown class."""


class DataClass(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marking: str = ""
    description: str = ""


class DatasetRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: str
    name: str
    data_class: str = Field(alias="class")


class Allowed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasets: list[str] = Field(default_factory=lambda: ["*"])
    models: list[str] = Field(default_factory=lambda: ["*"])


class DataClasses(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=1)
    classes: dict[str, DataClass] = Field(min_length=1)
    default_class: str
    tenants: dict[str, str] = Field(default_factory=dict)
    keys: dict[str, str] = Field(default_factory=dict)  # API key id -> class (the planner's egress: moe_core.policy)
    templates: dict[str, str] = Field(default_factory=dict)  # expert template -> class (likewise)
    datasets: list[DatasetRule] = Field(default_factory=list)
    allowed: dict[str, Allowed] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> DataClasses:
        named = [("default_class", self.default_class)]
        named += [(f"tenants.{t}", c) for t, c in self.tenants.items()]
        named += [(f"keys.{k}", c) for k, c in self.keys.items()]
        named += [(f"templates.{t}", c) for t, c in self.templates.items()]
        named += [(f"datasets[{i}]", r.data_class) for i, r in enumerate(self.datasets)]
        named += [(f"allowed.{c}", c) for c in self.allowed]
        for where, name in named:
            if name not in self.classes:
                raise ValueError(f"{where}: unknown class {name!r} (classes: {', '.join(self.classes)})")
        return self

    def marking(self, name: str) -> dict[str, str]:
        return {"class": name, "marking": self.classes[name].marking}

    def of_tenant(self, tenant: str) -> dict[str, str]:
        """The class a tenant's requests carry, and where it comes from."""
        name = self.tenants.get(tenant)
        return {**self.marking(name or self.default_class),
                "source": f"tenant policy ({tenant})" if name else "default_class"}

    def of_entry(self, kind: str, name: str, tenant: str | None = None) -> dict[str, str]:
        """The first matching `datasets` rule's class; else, for a tenant's dataset, the tenant's class."""
        rule = next((r for r in self.datasets if r.kind == kind and fnmatchcase(name, r.name)), None)
        if rule is None and tenant is not None:
            return {k: v for k, v in self.of_tenant(tenant).items() if k != "source"}
        return self.marking(rule.data_class if rule else self.default_class)


def parse(text: str, source: str) -> DataClasses:
    try:
        return DataClasses.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DataClassError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top)"
        raise DataClassError(f"{source}: {where}: {first['msg']}") from None


@dataclass(frozen=True)
class Reach:
    """What one request's stage runs reached: datasets (`namespace:name`) and models (`server/model`)."""

    datasets: tuple[str, ...]
    models: tuple[str, ...]

    @classmethod
    def of(cls, events: list[dict[str, Any]]) -> Reach:
        datasets, models = set(), set()
        for event in events:
            for ds in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
                datasets.add(f"{ds.get('namespace')}:{ds.get('name')}")
            model = ((event.get("run") or {}).get("facets") or {}).get("moe_model") or {}
            if model.get("model") or model.get("server"):
                models.add(f"{model.get('server') or '-'}/{model.get('model') or '-'}")
        return cls(tuple(sorted(datasets)), tuple(sorted(models)))


def findings(policy: DataClasses, data_class: str, reach: Reach) -> list[str]:
    """Each dataset and model the request reached that its class does not allow."""
    allowed = policy.allowed.get(data_class)
    if allowed is None:
        return []
    out = [f"dataset {d} is not allowed for {data_class} data" for d in reach.datasets
           if not any(fnmatchcase(d, p) for p in allowed.datasets)]
    out += [f"model {m} is not allowed for {data_class} data" for m in reach.models
            if not any(fnmatchcase(m, p) for p in allowed.models)]
    return out


def classify_request(policy: DataClasses, tenant: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A request's classification: its tenant's class, what its lineage reached, and what its class forbids."""
    cls = policy.of_tenant(tenant)
    reach = Reach.of(events)
    return {**cls, "datasets": list(reach.datasets), "models": list(reach.models),
            "findings": findings(policy, cls["class"], reach)}


class ClassesFile:
    """The data-class file in force: read at start (a broken file refuses the start), re-read when its text changes; a
    changed file that is broken keeps the previous classes in force and its message in `error`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: str | None = None
        self._text = self._read()
        self._policy = parse(self._text, str(path))

    def _read(self) -> str:
        try:
            return self.path.read_text()
        except OSError as exc:
            raise DataClassError(f"{self.path}: cannot be read ({exc})") from None

    def current(self) -> DataClasses:
        try:
            text = self._read()
        except DataClassError as exc:
            self.error = str(exc)
            return self._policy
        if text != self._text:
            self._text = text
            try:
                self._policy, self.error = parse(text, str(self.path)), None
            except DataClassError as exc:
                self.error = str(exc)
        return self._policy
