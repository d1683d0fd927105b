"""Egress decisions: whether a request of a data class may reach an inference server and model (or web research),
asked of Open Policy Agent (policy/opa/egress.rego) and cached per policy version, so a request costs dict look-ups
and no OPA round trip (the version is read again at most every `check_s` seconds; a new version empties the cache).
Each request's decisions become one egress record in the signed audit log (`egress_record`); a request answered from
the fleet's own cache has one too (`cache_record`: nothing was sent, what was served and from where), and a tool call
the decision did not permit is refused where the tool runs and recorded (`tool_refused_record`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from moe_core.contracts import Answer, AuditEvent, Envelope
from moe_core.knowledge.graph.audit import audit_event
from moe_core.policy.opa import PolicyClient, PolicyVersion
from moe_core.runtime.run_versions import policy_used

PATH = "moe/egress/decision"
RESEARCH = "research"  # Envelope.egress's entry for web research
CACHE = "cache"  # Envelope.egress's entry for the shared answer cache: the request's answer may be kept for others
TOOL = "tool"  # a tool target's kind (the egress record's `tools`)
TOOLS = "tool:*"  # Envelope.egress: the tools were decided; each the decision denied is `no-tool:<name>`
NO_TOOL = "no-tool"


def tool_egress(name: str) -> str:
    """A tool as a target (`tool:<name>`: the record's and the plan's name for it; an Envelope.egress entry of the
    messages written before the compact form)."""
    return f"{TOOL}:{name}"


def denied_tool(name: str) -> str:
    """A denied tool's Envelope.egress entry (beside TOOLS)."""
    return f"{NO_TOOL}:{name}"


def may_use_tool(egress: list[str] | None, name: str) -> bool:
    """Whether a request's egress decision (Envelope.egress) permits the tool `name` (None: not decided, it may):
    `tool:*` and no `no-tool:<name>`; a message written before the compact form names each permitted tool
    (`tool:<name>`) and is read as it was written. Neither form: denied (fail closed)."""
    if egress is None or tool_egress(name) in egress:
        return True
    return TOOLS in egress and denied_tool(name) not in egress


def may_research(egress: list[str] | None) -> bool:
    """Whether a request's egress decision permits web research (its question leaving the fleet)."""
    return egress is None or RESEARCH in egress


def may_cache(message: Envelope) -> bool:
    """Whether a request's answer may enter the shared cache (no egress decision: no data-class policy, it may)."""
    return message.egress is None or CACHE in message.egress


@dataclass(frozen=True)
class Target:
    """Somewhere a request could go: a role's model on a server, or web research (kind research, no server)."""

    role: str  # planner, judge, expert:<category>, critic, research, cache, tool
    kind: str  # model | research | cache | tool
    server: str = ""  # a tool's name for kind tool
    model: str = ""
    region: str = ""
    sovereignty: str = ""
    reach: str = ""  # kind tool: fleet (computed within the fleet) | external (its call leaves the fleet)

    @property
    def egress(self) -> str:
        if self.kind == TOOL:
            return tool_egress(self.server)
        return self.kind if self.kind in (RESEARCH, CACHE) else f"{self.server}/{self.model}"


TARGET_FIELDS = fields(Target)


@dataclass(frozen=True)
class EgressDecision:
    target: Target
    allowed: bool
    rule: str
    reason: str  # the policy's, for a refusal ("" when allowed)

    def record(self) -> dict[str, Any]:
        # the target's fields as they are (all strings): dataclasses.asdict deep-copied each, ~20 per request
        target = {f.name: getattr(self.target, f.name) for f in TARGET_FIELDS}
        return {**target, "outcome": "allow" if self.allowed else "deny", "rule": self.rule,
                **({"reason": self.reason} if self.reason else {})}


class EgressPolicy:
    def __init__(self, client: PolicyClient, check_s: float = 5.0) -> None:
        self.client = client
        self.check_s = check_s
        self.version: PolicyVersion | None = None
        self._checked_at = float("-inf")
        self._cache: dict[tuple[str, ...], tuple[bool, str, str]] = {}
        self.asked = 0  # decisions asked of OPA (cache misses), for tests and metrics

    async def _current(self) -> PolicyVersion:
        now = time.monotonic()
        if self.version is None or now - self._checked_at >= self.check_s:
            version = await self.client.version()
            self._checked_at = now
            if version != self.version:
                self.version, self._cache = version, {}
        assert self.version is not None
        return self.version

    async def decide(self, data_class: str, targets: list[Target]) -> tuple[PolicyVersion, list[EgressDecision]]:
        """Each target's decision for `data_class` (PolicyUnavailable when OPA cannot be asked: fail closed)."""
        version = await self._current()
        out = []
        for target in targets:
            key = (data_class, target.kind, target.server, target.model, target.region, target.sovereignty,
                   target.reach)
            if key not in self._cache:
                self._cache[key] = await self._ask(data_class, target)
            allowed, rule, reason = self._cache[key]
            out.append(EgressDecision(target, allowed, rule, reason))
        in_force = self.version or version
        # a cached decision was made under this version too: the stage run names it as it would after asking OPA
        # (a replayed request answered from the cache said "policy changed" where nothing had)
        policy_used(PATH, in_force.digest)
        return in_force, out

    async def _ask(self, data_class: str, target: Target) -> tuple[bool, str, str]:
        self.asked += 1
        asked: dict[str, Any] = {"class": data_class, "kind": target.kind, "model": target.model,
                                 "server": {"name": target.server, "region": target.region,
                                            "sovereignty": target.sovereignty}}
        if target.kind == TOOL:
            asked["tool"] = {"name": target.server, "reach": target.reach}
        decision = await self.client.decide(PATH, asked)
        if decision.version != self.version:  # reloaded under us: what follows is cached under the new version
            self.version, self._cache = decision.version, {}
        reason = str(decision.denials[0].get("reason", "")) if decision.denials else ""
        return decision.allowed, str(decision.result.get("rule", "")), reason


def by_reach(decisions: list[EgressDecision]) -> dict[str, list[str]]:
    """Tools' names grouped by their reach (fleet | external), each group sorted: what OPA was asked of each (a
    tool's input is its name and reach), so a candidate policy can decide an allowed tool again."""
    out: dict[str, list[str]] = {}
    for d in sorted(decisions, key=lambda d: d.target.server):
        out.setdefault(d.target.reach, []).append(d.target.server)
    return out


def egress_record(cause: Envelope, data_class: str, because: dict[str, str], version: PolicyVersion,
                  decisions: list[EgressDecision], refused: str | None,
                  outcome: dict[str, Any] | None = None) -> AuditEvent:
    """The request's egress record: its class (and where it came from), each decision (server, model, region,
    sovereignty, allow or deny, the rule that matched) and the policy version; `refused` names why it was refused
    (a required role with no permitted server), None when it was sent on; `left_out_of_plan`: the denied tools and
    research, which the planner neither offers nor plans (planner.egress_plan). The tools compactly: the allowed
    ones by name (`allow`) and by reach (`allow_by_reach`, added later: a record without it cannot have its allowed
    tools decided again), each denied one with its reach and rule. `outcome`: `decided(decisions, refused)` made
    earlier for the same decisions (the planner keeps it per policy version, class and targets)."""
    return audit_event(cause, actor="service:planner", action="egress.refused" if refused else "egress.decided",
                       subject=f"data_class:{data_class}", reason=refused or "sent only where its class may go",
                       details={"data_class": data_class, "class_from": because, "policy": PATH,
                                "policy_version": version.digest,
                                **(outcome if outcome is not None else decided(decisions, refused))})


def decided(decisions: list[EgressDecision], refused: str | None) -> dict[str, Any]:
    """The part of an egress record its decisions make (the same for every request with the same decisions)."""
    tools = [d for d in decisions if d.target.kind == TOOL]  # compact: the fleet's tools are many and alike
    return {"outcome": "deny" if refused else "allow",
            "decisions": [d.record() for d in decisions if d.target.kind != TOOL],
            "tools": {"allow": sorted(d.target.server for d in tools if d.allowed),
                      "allow_by_reach": by_reach([d for d in tools if d.allowed]),
                      "deny": [{"tool": d.target.server, "reach": d.target.reach, "rule": d.rule}
                               for d in tools if not d.allowed]},
            "left_out_of_plan": [] if refused else sorted(  # the planner offers and plans none
                d.target.egress for d in decisions if not d.allowed and d.target.kind in (TOOL, RESEARCH))}


def cache_record(answer: Answer, data_class: str, because: dict[str, str], cache: str, actor: str) -> AuditEvent:
    """The egress record of a request answered from the fleet's own cache (`cache`: exact, at the edge, or
    semantic, at the planner): nothing was sent to any server, research or tool; what was served (the cache entry)
    and from where (the models that once wrote that answer, within the tenant's own cache scope)."""
    return audit_event(answer, actor=actor, action="egress.cache_hit", subject=f"data_class:{data_class}",
                       reason=f"answered from the fleet's {cache} cache: nothing was sent to any inference server, "
                              "web research or tool",
                       details={"data_class": data_class, "class_from": because, "outcome": "served_from_cache",
                                "cache": cache, "cache_key": answer.cache_key or "",
                                "served": [s.ref for s in answer.sources if s.kind == "cache"],
                                "written_by": [m.model_dump(mode="json") for m in answer.models_used],
                                "decisions": []})


def tool_refused_record(task: Envelope, tool: str) -> AuditEvent:
    """A tool task its request's egress decision did not permit (Envelope.egress: `no-tool:<name>`, or no
    `tool:*`): refused where the tool runs, nothing computed or sent."""
    return audit_event(task, actor="service:mcp", action="egress.tool_refused", subject=f"tool:{tool}",
                       reason=f"the request's data class ({task.data_class or 'unstated'}) may not use the tool "
                              f"{tool} (policy/opa/egress.rego): it was not run",
                       details={"data_class": task.data_class, "tool": tool, "outcome": "deny",
                                "tools_decided": TOOLS in (task.egress or []),  # all but the denied ones
                                "denied_tools": sorted(e.split(":", 1)[1] for e in task.egress or []
                                                       if e.startswith(f"{NO_TOOL}:")),
                                "permitted_tools": sorted(e.split(":", 1)[1] for e in task.egress or []  # older
                                                          if e.startswith(f"{TOOL}:") and e != TOOLS)})
