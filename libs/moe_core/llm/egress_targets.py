"""Where a request could go, from the inference configuration (INFERENCE_SERVERS, MODEL_ASSIGNMENTS, the request's
expert template): each role's models on each server that serves them, web research, the shared answer cache and
each precision tool the planner may route to (with where its call goes: within the fleet or outside). The planner
asks the egress policy about them (moe_core.policy.egress) before anything is sent, and refuses a request when a
required role has no permitted server; the fleet's start-up check refuses a tenant's class the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from moe_core.contracts import EXPERT_CATEGORIES
from moe_core.llm.inference.config import InferenceConfig
from moe_core.llm.templates import ExpertTemplate
from moe_core.policy.egress import CACHE, RESEARCH, TOOL, TOOLS, EgressDecision, Target, denied_tool

# Without these a request cannot be answered: the plan, the general expert (every category's fallback), the merge.
REQUIRED = ("planner", "expert:general", "judge")
OPTIONAL_ROLES = ("critic", "thinking", "research", "housekeeping")


def targets(config: InferenceConfig, template: str | ExpertTemplate | None,
            tools: Mapping[str, str] | None = None) -> list[Target]:
    """Every (role, server, model) the request could reach, web research, the shared cache and `tools` (name ->
    reach: moe_core.contracts.tools.tool_reach), without repeats."""
    # every role MODEL_ASSIGNMENTS names is decided too: learning's (graph-ingest's `ingest`, gap-healer's
    # `gap_healer`, whatever their MOE_*_ROLE calls them) follows the answer under the request's decision, and a
    # model assigned to no role above was refused there (`data_class_forbidden`: learning learned nothing)
    named = [role for role in config.roles if role not in ("planner", "judge", *OPTIONAL_ROLES)]
    roles = {role: config.for_role(role, template, fallback="judge" if role in ("critic", "thinking") else None)
             for role in ("planner", "judge", *OPTIONAL_ROLES, *named)}
    roles |= {f"expert:{c}": config.for_expert(c, template) for c in ("general", *EXPERT_CATEGORIES)}
    out: dict[tuple[str, str, str], Target] = {}
    for role, refs in roles.items():
        for ref in refs:
            for server in config.candidates(ref):
                out.setdefault((role, server.name, ref.model), Target(role, "model", server.name, ref.model,
                                                                      server.region, server.sovereignty))
    return [*out.values(), Target(RESEARCH, RESEARCH), Target(CACHE, CACHE),
            *(Target(TOOL, TOOL, name, reach=reach) for name, reach in (tools or {}).items())]


def missing(decisions: Iterable[EgressDecision], required: Iterable[str] = REQUIRED) -> list[str]:
    """The required roles none of whose targets is allowed."""
    allowed = {d.target.role for d in decisions if d.allowed}
    return [role for role in required if role not in allowed]


def permitted(decisions: Iterable[EgressDecision]) -> list[str]:
    """Envelope.egress: the allowed `server/model` pairs (and `research`, `cache`), sorted; the tools compactly:
    `tool:*` (they were decided) and `no-tool:<name>` for each denied one (every message carries it, so not one
    entry per permitted tool: the egress record lists both)."""
    tools = [d for d in decisions if d.target.kind == TOOL]
    out = {d.target.egress for d in decisions if d.allowed and d.target.kind != TOOL}
    if tools:
        out |= {TOOLS, *(denied_tool(d.target.server) for d in tools if not d.allowed)}
    return sorted(out)
