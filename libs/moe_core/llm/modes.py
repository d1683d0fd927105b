"""The modes a client selects by model id, and what each changes in planner, experts and judge.

One catalogue shared by every stage (the planner forces tasks, the expert-worker appends the expert
suffix to its system prompt, the merger adds the judge instruction and shapes the output). An unknown id
behaves like `moe-orchestrator`.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODE = "moe-orchestrator"
CONCISE_WORDS = 120


@dataclass(frozen=True)
class Mode:
    id: str
    description: str
    expert_suffix: str = ""
    judge_instruction: str = ""
    forced_categories: tuple[str, ...] = ()
    replace_experts: bool = False  # the forced categories replace the planned expert tasks
    research_first: bool = False  # a web research task is added in front of the plan
    fast_path: bool = True  # a single high-confidence result may be returned without the judge
    word_limit: int | None = None
    code_only: bool = False
    sections: bool = False
    show_plan: bool = False
    # The original's force_think: the merger's thinking step runs whatever the plan and the confidences,
    # and its trace goes to the judge (so no fast path).
    force_think: bool = False


MODES: dict[str, Mode] = {m.id: m for m in (
    Mode(DEFAULT_MODE, "Full pipeline: planner, experts, tools, knowledge graph, judge"),
    Mode(
        "moe-orchestrator-code", "Code only: the answer is code blocks, no prose",
        expert_suffix="Answer with code only: fenced code blocks, comments inside the code, no prose outside.",
        judge_instruction="Output only code: one or more fenced code blocks, no prose outside them.",
        forced_categories=("code_reviewer",), code_only=True,
    ),
    Mode(
        "moe-orchestrator-concise", f"Concise: at most {CONCISE_WORDS} words",
        expert_suffix=f"Be concise: at most {CONCISE_WORDS} words.",
        judge_instruction=f"Answer in at most {CONCISE_WORDS} words. No preamble.",
        word_limit=CONCISE_WORDS,
    ),
    Mode(
        "moe-orchestrator-agent", "Coding agents: code_reviewer and technical_support, tools passed through",
        expert_suffix="You act for a coding agent: be exact, use the provided tools when they help.",
        judge_instruction="The user is a coding agent: answer exactly and actionably.",
        forced_categories=("code_reviewer", "technical_support"), replace_experts=True,
    ),
    Mode(
        "moe-orchestrator-agent-orchestrated", "Agents, orchestrated: the planner decides, tools passed through",
        expert_suffix="You act for a coding agent: be exact, use the provided tools when they help.",
        fast_path=False, force_think=True,
    ),
    Mode(
        "moe-orchestrator-research", "Research: the web first, answers cite numbered sources",
        judge_instruction="Base the answer on the web sources first and cite them as [n].",
        research_first=True, fast_path=False, force_think=True,
    ),
    Mode(
        "moe-orchestrator-report", "Report: a structured answer in sections",
        expert_suffix="Be thorough and structured.",
        judge_instruction=(
            "Write a report in Markdown sections: '## Summary', '## Details', '## Caveats' (and '## Sources' "
            "when there are sources)."
        ),
        fast_path=False, sections=True, force_think=True,
    ),
    Mode(
        "moe-orchestrator-plan", "Plan: shows the orchestration plan, then the answer",
        show_plan=True, fast_path=False, force_think=True,
    ),
)}


# The modes whose thinking step the original forces (force_think=True): agent_orchestrated, research, report, plan.
FORCE_THINK_MODES = tuple(sorted(m.id for m in MODES.values() if m.force_think))


def get_mode(mode_id: str | None) -> Mode:
    return MODES.get(mode_id or DEFAULT_MODE, MODES[DEFAULT_MODE])


def expert_suffix(mode_id: str | None) -> str:
    """What the mode adds to an expert's system prompt ("" when nothing)."""
    suffix = get_mode(mode_id).expert_suffix
    return f"\n{suffix}" if suffix else ""
