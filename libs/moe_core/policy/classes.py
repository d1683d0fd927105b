"""The data classes (policy/data-classes.yaml, MOE_DATA_CLASSES_FILE): the fleet's one parser of the file, every field,
strictly. Read where requests are decided (a request's class is the highest of its tenant's, its key's, its template's
and the client's `x-moe-data-class` header; classes are listed lowest first: a client names a class to raise its
request's, never to lower it) and where they are recorded (codex-lineage: the class of each catalog entry, and what a
request's lineage reached that its class does not allow: classify_request)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
HEADER = "x-moe-data-class"


class ClassFileError(ValueError):
    """The data-class file cannot be read, does not parse, or names an unknown class."""


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


class ClassBook(BaseModel):
    """The file: the classes in order, the defaults of tenants, keys and templates, the classes of datasets (catalog
    entries) and where each class may go."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=1)
    classes: dict[str, DataClass] = Field(min_length=1)
    default_class: str
    tenants: dict[str, str] = Field(default_factory=dict)
    keys: dict[str, str] = Field(default_factory=dict)  # API key id -> class
    templates: dict[str, str] = Field(default_factory=dict)  # expert template -> class
    datasets: list[DatasetRule] = Field(default_factory=list)
    allowed: dict[str, Allowed] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> ClassBook:
        named = [("default_class", self.default_class)]
        for section in ("tenants", "keys", "templates"):
            named += [(f"{section}.{k}", c) for k, c in getattr(self, section).items()]
        named += [(f"datasets[{i}]", r.data_class) for i, r in enumerate(self.datasets)]
        named += [(f"allowed.{c}", c) for c in self.allowed]
        for where, name in named:
            if name not in self.classes:
                raise ValueError(f"{where}: unknown class {name!r} (classes: {', '.join(self.classes)})")
        return self

    def rank(self, name: str) -> int:
        return list(self.classes).index(name)

    def known(self, name: str) -> bool:
        return name in self.classes

    def of_tenant(self, tenant: str) -> str:
        return self.tenants.get(tenant, self.default_class)

    def marking(self, name: str) -> dict[str, str]:
        return {"class": name, "marking": self.classes[name].marking}

    def tenant_marking(self, tenant: str) -> dict[str, str]:
        """The class a tenant's requests carry, its marking, and where it comes from."""
        name = self.tenants.get(tenant)
        return {**self.marking(name or self.default_class),
                "source": f"tenant policy ({tenant})" if name else "default_class"}

    def of_entry(self, kind: str, name: str, tenant: str | None = None) -> dict[str, str]:
        """The first matching `datasets` rule's class; else, for a tenant's dataset, the tenant's class."""
        rule = next((r for r in self.datasets if r.kind == kind and fnmatchcase(name, r.name)), None)
        if rule is None and tenant is not None:
            return self.marking(self.of_tenant(tenant))
        return self.marking(rule.data_class if rule else self.default_class)

    def highest(self, *names: str | None) -> str | None:
        """The highest of the named classes (None for none); an unknown name is a ClassFileError."""
        found = [n for n in names if n]
        for name in found:
            if name not in self.classes:
                raise ClassFileError(f"unknown data class {name!r} (classes: {', '.join(self.classes)})")
        return max(found, key=self.rank) if found else None

    def of_request(self, tenant: str, template: str | None, declared: str | None) -> Classed:
        """The request's class: the highest of its tenant's, its template's and what the edge declared (its key's
        and the client's header, Envelope.data_class), with where each came from."""
        sources = {"tenant": self.of_tenant(tenant)}
        if template and template in self.templates:
            sources["template"] = self.templates[template]
        if declared:
            sources["declared"] = declared
        name = self.highest(*sources.values()) or self.default_class
        return Classed(name, {k: v for k, v in sources.items() if v == name})


def declared_class(book: ClassBook, key_id: str | None, headers: Mapping[str, str],
                   key_class: str | None = None) -> str | None:
    """What the edge declares of a request's class: the highest of its key's (`keys` in the file, and the class
    set on the key in the admin API, `key_class`) and the client's x-moe-data-class header; an unknown header value
    is a 400 in the API's format. The planner raises it to its tenant's and template's (ClassBook.of_request): a
    client can raise a class, never lower it. A key's class the file no longer names counts as the highest class
    (fail closed)."""
    header = (headers.get(HEADER) or "").strip().lower() or None
    if header is not None and not book.known(header):
        raise OpenAIError(400, f"unknown data class {header!r} in the {HEADER} header (known: "
                               f"{', '.join(book.classes)})", param=HEADER, code="invalid_data_class")
    if key_class is not None and not book.known(key_class):
        log.error("key %s has the data class %r the data-class file does not name: taken as the highest", key_id,
                  key_class)
        key_class = list(book.classes)[-1]
    return book.highest(book.keys.get(key_id or ""), key_class, header)


@dataclass(frozen=True)
class Classed:
    name: str
    because: dict[str, str]  # the sources that gave the class (tenant, template, declared)


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


def findings(book: ClassBook, data_class: str, reach: Reach) -> list[str]:
    """Each dataset and model the request reached that its class does not allow."""
    allowed = book.allowed.get(data_class)
    if allowed is None:
        return []
    out = [f"dataset {d} is not allowed for {data_class} data" for d in reach.datasets
           if not any(fnmatchcase(d, p) for p in allowed.datasets)]
    out += [f"model {m} is not allowed for {data_class} data" for m in reach.models
            if not any(fnmatchcase(m, p) for p in allowed.models)]
    return out


def classify_request(book: ClassBook, tenant: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A request's classification: its tenant's class, what its lineage (OpenLineage run events) reached, and what
    its class forbids of that."""
    cls = book.tenant_marking(tenant)
    reach = Reach.of(events)
    return {**cls, "datasets": list(reach.datasets), "models": list(reach.models),
            "findings": findings(book, cls["class"], reach)}


def parse(text: str, source: str) -> ClassBook:
    """The book in `text`, or a ClassFileError naming `source` (and the line, for YAML)."""
    try:
        return ClassBook.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ClassFileError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ClassFileError(f"{source}: {'.'.join(map(str, first['loc'])) or '(top)'}: {first['msg']}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ClassFileError(f"{path}: cannot be read ({exc})") from None


def load(path: Path) -> ClassBook:
    """The book in `path`, or a ClassFileError naming the file (and line, for YAML)."""
    return parse(_read(path), str(path))


class ClassFile:
    """The file in force: read at start (a broken file refuses the start), re-read when it changes (its inode, size or
    mtime in ns); a changed file that is broken keeps the previous book in force and its message in `error`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: str | None = None
        self._stamp = self._stat()
        self._book = load(path)

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (-1, -1, -1)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> ClassBook:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._book, self.error = load(self.path), None
            except ClassFileError as exc:
                self.error = str(exc)
                log.error("data-class file not reloaded, the previous classes stay in force: %s", exc)
        return self._book
