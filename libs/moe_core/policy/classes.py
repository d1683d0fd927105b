"""A request's data class (policy/data-classes.yaml, MOE_DATA_CLASSES_FILE), read where requests are decided: the
class of its tenant, its key, its template and the client's `x-moe-data-class` header, the highest of them (classes
are listed lowest first). A client names a class to raise its request's, never to lower it. codex-lineage reads the
same file for its catalog and compliance checks (codex_lineage.classes: every field, strictly)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
HEADER = "x-moe-data-class"


class ClassFileError(ValueError):
    """The data-class file cannot be read, does not parse, or names an unknown class."""


class ClassBook(BaseModel):
    """What decides a request's class: the classes in order and the defaults of tenants, keys and templates."""

    model_config = ConfigDict(extra="ignore")
    classes: dict[str, dict[str, str]] = Field(min_length=1)
    default_class: str
    tenants: dict[str, str] = Field(default_factory=dict)
    keys: dict[str, str] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> ClassBook:
        named = [("default_class", self.default_class)]
        for section in ("tenants", "keys", "templates"):
            named += [(f"{section}.{k}", c) for k, c in getattr(self, section).items()]
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


def load(path: Path) -> ClassBook:
    """The book in `path`, or a ClassFileError naming the file (and line, for YAML)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ClassFileError(f"{path}: cannot be read ({exc})") from None
    try:
        return ClassBook.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ClassFileError(f"{path}: not valid YAML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ClassFileError(f"{path}: {'.'.join(map(str, first['loc'])) or '(top)'}: {first['msg']}") from None


class ClassFile:
    """The file in force, re-read when it changes (its mtime): a broken change keeps the previous book."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._mtime()
        self._book = load(path)

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return -1.0

    def current(self) -> ClassBook:
        stamp = self._mtime()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._book = load(self.path)
            except ClassFileError as exc:
                log.error("data-class file not reloaded, the previous classes stay in force: %s", exc)
        return self._book
