"""The planner plans only what its request's egress decision permits (issue 50, planner.egress_plan): the tools it
offers the planner model, the preflight and the rescue are the permitted ones; a task naming a denied tool (a chain's
step too) or denied research is left out of the plan, and a plan left with no answering task gets a general expert;
the plan cache keeps plans made without denied tools apart; the egress record names what was left out. The same on
the real fleet: tests/e2e/moe_core/policy/test_data_class_egress.py."""

from __future__ import annotations

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, Plan, PlannedTask, deadline_in
from moe_core.contracts.tools import select_tools
from moe_core.policy.egress import EgressDecision, Target, egress_record
from moe_core.policy.opa import PolicyVersion
from planner.egress_plan import keep_to_egress, left_out, offered_tools, scope_suffix
from planner.preflight import recognise
from planner.tool_catalogue import ToolCatalogue

pytestmark = pytest.mark.unit


def _tools() -> ToolCatalogue:
    return ToolCatalogue(select_tools())


def _request(egress: list[str] | None) -> ChatRequest:
    return ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="q")], data_class="personal", egress=egress)


def _permits_all_but(tools: ToolCatalogue, *denied: str, research: bool = False) -> list[str]:
    return ["s/m", "cache", *(["research"] if research else []),
            *(f"tool:{n}" for n in tools.names if n not in denied)]


def test_only_the_permitted_tools_are_offered_and_each_subset_is_built_once() -> None:
    tools = _tools()
    assert offered_tools(tools, _request(None)) is tools  # no decision: every tool
    assert offered_tools(tools, _request(_permits_all_but(tools))) is tools
    egress = _permits_all_but(tools, "number_words", "timezone_convert")
    offered = offered_tools(tools, _request(egress))
    assert "number_words" not in offered and "timezone_convert" not in offered and "calculate" in offered
    assert offered_tools(tools, _request(egress)) is offered
    assert "number_words" not in offered.prompt() and not offered.valid("number_words", {"value": 3})
    # the preflight finds no task for a denied tool, and does for a permitted one
    assert recognise("Write 1234 in words", offered) is None
    assert recognise("Write 1234 in words", tools) is not None
    assert offered_tools(tools, _request(["s/m"])).names == []  # no tool at all


def _plan(*tasks: PlannedTask) -> Plan:
    return Plan(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                question="Write 1234 in words for a cheque", tasks=list(tasks))


TOOL = PlannedTask(task_id="t1", kind="tool", category="precision", instruction="in words", tool="number_words",
                   args={"value": 1234})
EXPERT = PlannedTask(task_id="t2", category="general", instruction="say what a cheque is")
RESEARCH = PlannedTask(task_id="t3", kind="research", category="research", instruction="news",
                       args={"queries": ["cheque"]})


def test_a_denied_tool_or_research_task_is_left_out_and_an_answering_task_kept() -> None:
    tools = _tools()
    denied = _request(_permits_all_but(tools, "number_words"))
    assert keep_to_egress(_plan(TOOL, EXPERT, RESEARCH), denied).tasks == [EXPERT]
    allowed = _request(_permits_all_but(tools, research=True))
    plan = _plan(TOOL, EXPERT, RESEARCH)
    assert keep_to_egress(plan, allowed) is plan
    assert keep_to_egress(plan, _request(None)) is plan
    [only] = keep_to_egress(_plan(TOOL), denied).tasks  # a preflight plan of the denied tool alone
    assert (only.kind, only.category, only.instruction) == ("expert", "general", "Write 1234 in words for a cheque")
    [alone] = keep_to_egress(_plan(RESEARCH), denied).tasks
    assert alone.kind == "expert"
    chain = PlannedTask(task_id="t1", kind="tool", category="precision", instruction="chain", tool="chain",
                        args={"steps": [{"tool": "calculate", "args": {}}, {"tool": "number_words", "args": {}}]})
    assert keep_to_egress(_plan(chain, EXPERT), denied).tasks == [EXPERT]  # a chain with a denied step
    assert keep_to_egress(_plan(chain, EXPERT), _request(_permits_all_but(tools))).tasks == [chain, EXPERT]


def test_the_plan_cache_keeps_plans_made_without_denied_tools_apart() -> None:
    tools = _tools()
    assert scope_suffix(tools, _request(None)) == ""
    assert scope_suffix(tools, _request(_permits_all_but(tools, research=True))) == ""  # nothing denied: as before
    one = scope_suffix(tools, _request(_permits_all_but(tools, "number_words")))
    other = scope_suffix(tools, _request(_permits_all_but(tools, "timezone_convert")))
    assert one.startswith("!") and other.startswith("!") and one != other
    assert left_out(tools, _permits_all_but(tools, "number_words")) == ["tool:number_words", "research"]


def test_the_egress_record_names_what_the_planner_leaves_out() -> None:
    decisions = [EgressDecision(Target("planner", "model", "s", "m"), True, "open", ""),
                 EgressDecision(Target("research", "research"), False, "no-research-for-protected-data", "no"),
                 EgressDecision(Target("tool", "tool", "calculate", reach="fleet"), True, "fleet", ""),
                 EgressDecision(Target("tool", "tool", "number_words", reach="external"), False,
                                "protected-data-fleet-tools-only", "no")]
    version = PolicyVersion(digest="d", modules=("egress.rego",))
    record = egress_record(_request(None), "personal", {"tenant": "personal"}, version, decisions, None)
    assert record.details["left_out_of_plan"] == ["research", "tool:number_words"]
    refused = egress_record(_request(None), "personal", {}, version, decisions, "no planner")
    assert refused.details["left_out_of_plan"] == []
