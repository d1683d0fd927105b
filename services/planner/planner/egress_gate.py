"""The planner's egress gate (issue 50): before a request is planned, its data class (moe_core.policy.classes: the
highest of its tenant's, template's, key's and the client's header) is decided against every server, model and web
research it could reach (moe_core.policy.egress over policy/opa/egress.rego, cached per policy version). A request
with no permitted server for a required role is refused (403 data_class_forbidden) and nothing is sent; otherwise it
goes on carrying the permitted targets (Envelope.egress), which every stage's inference client keeps to. Either way
its egress record goes to the signed audit log. At start, a tenant whose class has no permitted server for a
required role refuses the planner's start."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moe_core.contracts import Answer, AuditEvent, ChatRequest, ErrorInfo
from moe_core.contracts.tools import tool_reach
from moe_core.llm.egress_targets import REQUIRED, missing, permitted, targets
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.templates import of_message
from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.policy.classes import ClassBook, ClassFile, ClassFileError
from moe_core.policy.egress import EgressDecision, EgressPolicy, Target, decided, egress_record
from moe_core.runtime.replay import restrict_egress
from planner.settings import PlannerSettings

log = logging.getLogger(__name__)


class EgressRefusedAtStart(RuntimeError):
    """A tenant's class has no permitted server for a required role: the planner does not start."""


@dataclass
class Gated:
    request: ChatRequest  # with its class and egress when it may go on
    refusal: Answer | None = None  # the client's error: nothing is sent
    record: AuditEvent | None = None  # its egress record (None: no decision could be made, or not enforced)


class EgressGate:
    def __init__(self, settings: PlannerSettings,
                 config: InferenceConfig | Callable[[], InferenceConfig], tools: Iterable[str] = ()) -> None:
        """`config`: the servers in force, or how to read them now (the inference client's, with the console's
        changes: moe_core.llm.inference.live); `tools`: the precision tools the planner may route to."""
        self.enforced = settings.egress_enforced
        self.allow_unserved = settings.egress_allow_unserved_templates
        self._config = config
        self.tools = tool_reach(tools, settings.tools_external)
        self.classes = ClassFile(settings.classes_path()) if self.enforced else None
        self.policy = EgressPolicy(PolicyClient.from_settings(settings), settings.egress_check_s)
        # what every request of a template and class shares, kept while the servers and the policy version stay
        # (issue 52: the targets, the permitted list and the record's decisions were ~0.25 ms of CPU per request)
        self._targets: tuple[InferenceConfig | None, dict[str | None, list[Target]]] = (None, {})
        self._outcomes: dict[tuple[str, int], tuple[list[EgressDecision], list[str], dict[str, Any]]] = {}

    @property
    def config(self) -> InferenceConfig:
        return self._config() if callable(self._config) else self._config

    async def check(self, request: ChatRequest, required: tuple[str, ...] = REQUIRED) -> Gated:
        """The request's egress decision; its own model calls in this stage run keep to it from now on."""
        if self.classes is None:
            return Gated(request)
        try:
            classed = self.classes.current().of_request(request.tenant_id, request.template, request.data_class)
        except ClassFileError as exc:
            return Gated(request, _refusal(request, "invalid_data_class", f"the request's data class is not "
                                           f"known: {exc}"))
        try:
            reach = self._reach(of_message(request))
            version, decisions = await self.policy.decide(classed.name, reach)
        except PolicyUnavailable as exc:
            log.error("egress of %s refused (the policy engine is unavailable, fail closed): %s",
                      request.response_id, exc)
            return Gated(request, _refusal(request, "policy_unavailable", "the policy engine is unavailable, so "
                                           "nothing is sent: try again later", detail=str(exc)))
        lacking = missing(decisions, required)
        if lacking:
            why = (f"{classed.name} data may not be sent to any inference server the fleet would use for "
                   f"{', '.join(lacking)}")
            record = egress_record(request, classed.name, classed.because, version, decisions, why)
            detail = "; ".join(d.reason for d in decisions if not d.allowed and d.target.role in lacking)
            return Gated(request, _refusal(request, "data_class_forbidden", why, detail=detail), record)
        allowed, outcome = self._outcome(classed.name, reach, decisions)
        restrict_egress(allowed)
        gated = request.model_copy(update={"data_class": classed.name, "egress": allowed})
        return Gated(gated, None, egress_record(gated, classed.name, classed.because, version, decisions, None,
                                                outcome))

    def _reach(self, template: Any) -> list[Target]:
        """Every target of the request's template (a named one or none: kept while the servers in force stay)."""
        config = self.config
        if template is not None and not (isinstance(template, str) and template in config.templates):
            return targets(config, template, self.tools)  # a template of its own or an unknown name: not kept
        if self._targets[0] is not config:
            self._targets = (config, {})
        kept = self._targets[1]
        if template not in kept:
            kept[template] = targets(config, template, self.tools)
        return kept[template]

    def _outcome(self, data_class: str, reach: list[Target],
                 decisions: list[EgressDecision]) -> tuple[list[str], dict[str, Any]]:
        """The permitted targets (a copy) and the record's decided part, both functions of the decisions alone:
        kept per class and targets, used again only for equal decisions (the policy's version may have changed)."""
        key = (data_class, id(reach))
        kept = self._outcomes.get(key)
        if kept is None or kept[0] != decisions:
            kept = (decisions, permitted(decisions), decided(decisions, None))
            if len(self._outcomes) >= 256:  # classes x templates; a stale key's entry is only replaced
                self._outcomes.clear()
            self._outcomes[key] = kept
        return list(kept[1]), kept[2]

    async def check_start(self) -> None:
        """Every tenant the data-class file names, the default class and each named template (with its own class,
        policy/data-classes.yaml `templates`, or the default): a permitted server for each required role, else
        EgressRefusedAtStart naming tenant or template, class and role (OPA down: PolicyUnavailable, no start). A
        tenant whose (higher) class a named template cannot serve refuses the start too, naming tenant, template,
        class and role, unless MOE_EGRESS_ALLOW_UNSERVED_TEMPLATES (then logged: that tenant's requests with that
        template are refused, 403)."""
        if self.classes is None:
            return
        book = self.classes.current()
        every = [("(every other tenant: default_class)", book.default_class), *sorted(book.tenants.items())]
        problems = [f"tenant {tenant}: class {name} has no permitted server for role {role}"
                    for tenant, name in every for role in await self._lacking(name, None)]
        for template in sorted(self.config.templates):
            own = book.highest(book.default_class, book.templates.get(template)) or book.default_class
            problems += [f"template {template}: class {own} has no permitted server for role {role}"
                         for role in await self._lacking(own, template)]
            problems += await self._unserved(book, every, template, own)
        if problems:
            raise EgressRefusedAtStart("the planner does not start: " + "; ".join(problems)
                                       + " (policy/opa/egress.rego, INFERENCE_SERVERS' sovereignty, "
                                         "policy/data-classes.yaml)")
        log.info("egress: every tenant's class and named template has a permitted server for %s (policy %s)",
                 ", ".join(REQUIRED), self.policy.version.digest if self.policy.version else "-")

    async def _unserved(self, book: ClassBook, every: list[tuple[str, str]], template: str, own: str) -> list[str]:
        """The tenants whose higher class `template` cannot serve: start problems, or (allowed by the operator's
        MOE_EGRESS_ALLOW_UNSERVED_TEMPLATES) warnings, their requests with the template refused (403)."""
        found = []
        for tenant, name in every:
            name = book.highest(name, own) or name
            if name != own:
                found += [f"tenant {tenant}: class {name} cannot use template {template}: no permitted server for "
                          f"role {role}" for role in await self._lacking(name, template)]
        if found and self.allow_unserved:
            log.warning("egress: %s; allowed by MOE_EGRESS_ALLOW_UNSERVED_TEMPLATES: those requests are refused "
                        "(403 data_class_forbidden)", "; ".join(found))
            return []
        return found

    async def _lacking(self, data_class: str, template: str | None) -> list[str]:
        _, decisions = await self.policy.decide(data_class, targets(self.config, template))
        return missing(decisions)

    async def close(self) -> None:
        await self.policy.client.close()


def _refusal(request: ChatRequest, code: str, message: str, detail: str = "") -> Answer:
    return Answer(**request.child_fields(), mode=request.mode, finish_reason="error",
                  error=ErrorInfo(code=code, message=message, detail=detail))
