"""The rules in force in one process: loaded when the service starts (a file that does not parse stops the
start with its line), looked at again at most every MOE_GUARDRAILS_RELOAD_S seconds; a changed file that
does not parse is logged and counted (moe_guardrail_reload_errors_total) and the previous rules stay in force.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from moe_core.llm.guardrails.engine import versions
from moe_core.llm.guardrails.rules import Direction, GuardrailError, Rule, RuleFile, parse
from moe_core.policy.settings import in_repo
from moe_core.runtime.observability.metrics import GUARDRAIL_RELOAD_ERRORS

log = logging.getLogger(__name__)
DEFAULT_FILE = Path("policy/guardrails.yaml")


def resolve_path(raw: str) -> Path | None:
    """A relative path is looked up in the working directory, then the repository; None: no rules (the
    setting is empty, or the default file is absent)."""
    if not raw.strip():
        return None
    path = in_repo(Path(raw))
    if not path.exists() and Path(raw) == DEFAULT_FILE:
        return None
    return path


def rules_version(text: str) -> str:
    """A rules text's version, as every audit record of a guardrail decision names it."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


class GuardrailBook:
    def __init__(self, raw_path: str = str(DEFAULT_FILE), inline: str = "", reload_s: float = 5.0,
                 service: str = "", timeout_s: float = 2.0) -> None:
        self.inline = inline.strip()
        self.timeout_s = timeout_s  # a check that takes longer blocks (moe_core.llm.guardrails.engine)
        self.version = "none"  # sha256 of the rules text in force: named in every guardrail audit record
        self.path = None if self.inline else resolve_path(raw_path)
        self.reload_s = reload_s
        self.service = service
        self._checked = time.monotonic()
        self._mtime = self._stat()
        self.rules = self._read()  # GuardrailError: the service does not start

    @classmethod
    def from_settings(cls, settings: object) -> GuardrailBook:
        return cls(getattr(settings, "guardrails_file", str(DEFAULT_FILE)), getattr(settings, "guardrails", ""),
                   getattr(settings, "guardrails_reload_s", 5.0), getattr(settings, "service_name", ""),
                   getattr(settings, "guardrail_check_timeout_s", 2.0))

    @property
    def source(self) -> str:
        return "MOE_GUARDRAILS" if self.inline else str(self.path)

    def _stat(self) -> tuple[int, int, int] | None:
        """The file's identity: a file replaced (a new inode) or rewritten within the clock's granularity (the same
        mtime) is still seen as changed."""
        try:
            found = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return (found.st_mtime_ns, found.st_ino, found.st_size) if found is not None else None

    def _read(self) -> RuleFile:
        if self.inline:
            return self._parsed(self.inline)
        if self.path is None:
            return RuleFile()
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise GuardrailError(f"guardrails {self.path}: cannot read the file: {exc.strerror}") from None
        return self._parsed(text)

    def _parsed(self, text: str) -> RuleFile:
        rules = parse(text, self.source)
        self.version = rules_version(text)
        return rules

    def reload(self) -> bool:
        """Read the file again; False (and the old rules kept) when it does not parse."""
        try:
            self.rules = self._read()
        except GuardrailError as exc:
            GUARDRAIL_RELOAD_ERRORS.labels(self.service or "-").inc()
            log.error("guardrail rules not reloaded, the previous rules stay in force: %s", exc)
            return False
        log.info("guardrail rules reloaded from %s", self.source)
        return True

    def _maybe_reload(self) -> None:
        if self.path is None or time.monotonic() - self._checked < self.reload_s:
            return
        self._checked = time.monotonic()
        mtime = self._stat()
        if mtime != self._mtime:
            self._mtime = mtime
            self.reload()

    def rules_for(self, tenant: str, direction: Direction) -> list[Rule]:
        self._maybe_reload()
        tenant_rules = self.rules.tenants.get(tenant)
        return tenant_rules.of(direction) if tenant_rules is not None else []

    def versions(self) -> dict[str, str]:
        """The rules file's and the detectors' versions, for the audit record of a decision."""
        return {"rules": self.version, **versions()}

    def guards(self, tenant: str, direction: Direction = "output") -> bool:
        """Whether the tenant has rules of this direction (an answer then goes through the guardrail stage)."""
        return bool(self.rules_for(tenant, direction))
