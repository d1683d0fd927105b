"""Pure synthesis logic: which results count, in which priority, the fast path, the thinking and judge
prompts, the answer's sources, and whether a critic must see the answer first."""

from __future__ import annotations

import re
from collections.abc import Callable

from merger import insight
from merger.core import FALLBACK_PREFIX, RANK, missing, result_sources, usable
from moe_core.contracts import CRITIC_CATEGORIES, Plan, ResponseFormat, TaskResult
from moe_core.llm import structured
from moe_core.llm.modes import Mode
from moe_core.runtime.run_versions import prompt_used

__all__ = ["CRITIC_CATEGORIES", "FALLBACK_PREFIX", "RANK", "missing", "result_sources", "usable"]  # one notion each, in
# core (the critic's categories: in the contracts, the planner reads them too)
# Source priority when results disagree (the judge is told the same order).
PRIORITY = ("reasoning", "precision tool", "knowledge graph", "expert", "web", "cache")
PRIORITY_TEXT = " > ".join(PRIORITY)
# The judge sees the semantic cache's nearest example only, its answer cut to this: it is the lowest-priority
# source, and every word of it is a prompt token of the judge call.
CACHE_EXAMPLE_CHARS = 600
# The thinking step weighs the sources (agreement, contradictions, trust, gaps) and the judge then reads every one of
# them whole: of an expert's answer it reads the key message, at most this many words (issue 52: at a real answer's
# length the two experts' answers were ~420 of the step's prompt tokens, read again by the judge).
THINKING_SOURCE_WORDS = 60


def source_class(result: TaskResult) -> str:
    if result.kind == "tool":
        return "precision tool"
    if result.kind == "graph":
        return "knowledge graph"
    if result.kind == "research":
        return "web"
    return "reasoning" if result.category == "reasoning" else "expert"


def ordered(results: list[TaskResult]) -> list[TaskResult]:
    """Highest priority first; within a class the most confident first."""
    return sorted(results, key=lambda r: (PRIORITY.index(source_class(r)), RANK[r.confidence], r.task_id))


def dedup(results: list[TaskResult]) -> list[TaskResult]:
    """One result per category (and kind): the most confident one, in priority order."""
    best: dict[tuple[str, str], TaskResult] = {}
    for result in sorted(results, key=lambda r: (RANK[r.confidence], r.task_id)):
        best.setdefault((result.kind, result.category), result)
    return ordered(list(best.values()))


def fast_path(plan: Plan, results: dict[str, TaskResult], mode: Mode) -> TaskResult | None:
    """One usable high-confidence result and nothing else that counts: no judge needed.

    Expert tasks always count (a failed expert is a gap the judge should see); graph, research and tool
    tasks count only when they found something. A single high-confidence tool result is exact. A direct
    plan (a trivial question, one plain model call) states no confidence: its one answer is final. A structured
    request's answer is written by its judge unless it is a direct plan's (its one call was constrained)."""
    if not mode.fast_path or (plan.params.response_format is not None and not plan.is_direct()):
        return None
    good = dedup(usable(results))
    good_ids = {r.task_id for r in usable(results)}
    failed_experts = [t for t in plan.tasks if t.kind == "expert" and t.task_id not in good_ids]
    if len(good) == 1 and not failed_experts and (good[0].confidence == "high" or plan.is_direct()):
        return good[0]
    return None


def with_tool_calls(results: dict[str, TaskResult]) -> TaskResult | None:
    """An agent expert that answered with tool calls: the client must run them, no judge."""
    calling = [r for r in results.values() if r.tool_calls and not r.error]
    return sorted(calling, key=lambda r: (RANK[r.confidence], r.task_id))[0] if calling else None


def needs_thinking(plan: Plan, results: list[TaskResult], mode: Mode | None = None, all_high: bool = False) -> bool:
    """The original's rule, more than one task or a low-confidence result (always in a force_think mode), except
    when there is nothing to weigh (`nothing_to_weigh`), unless `all_high` (MOE_THINKING_ALL_HIGH) keeps it."""
    if (mode is not None and mode.force_think) or any(r.confidence == "low" for r in results):
        return True
    return len(plan.tasks) > 1 and (all_high or not nothing_to_weigh(plan, results))


def nothing_to_weigh(plan: Plan, results: list[TaskResult]) -> bool:
    """Every expert task answered with high confidence, and the only other source that found something is the
    knowledge graph: the experts answered different parts of the question, and the graph's facts outrank them by the
    judge's own trust rule (`trust_rule`), which reads both whole. So the thinking step's work is empty — agreement
    (the judge merges), contradictions and which to trust (the rule settles them), gaps (none: every part answered).
    Web results (current facts an expert may not know) and a tool's figure still make it weigh (issue 52: ~90 tokens
    of a two-expert request, ~380 with graph facts at 200-word answers: the step's call and its notes in the judge's
    prompt)."""
    answered = {r.task_id for r in results if r.kind == "expert" and r.confidence == "high" and not r.error}
    experts = {t.task_id for t in plan.tasks if t.kind == "expert"}
    return bool(experts) and all(r.kind in ("expert", "graph") for r in results) and experts <= answered


def critic_pending(plan: Plan) -> bool:
    return any(t.category in CRITIC_CATEGORIES for t in plan.tasks)


def _blocks(results: list[TaskResult], text: Callable[[TaskResult], str] = lambda r: r.content.strip()) -> str:
    """The sources, most trusted first (`ordered`), each with one short header line (every word is a
    prompt token of both the thinking step and the judge). Numbered #n, not [n]: [n] is a web source's
    number."""
    return "\n\n".join(f"#{i} {source_class(r)}/{r.category}, {r.confidence}:\n{text(r)}"
                        for i, r in enumerate(ordered(results), 1))


def key_message(result: TaskResult, words: int = THINKING_SOURCE_WORDS) -> str:
    """What the thinking step reads of a source: an expert's key message (its CORE_FINDING, else the first `words`
    words of its answer, which the protocol begins with), cut to `words`; graph facts, web results and a tool's
    figure whole (they are what it weighs the experts against)."""
    text = result.content.strip()
    if result.kind != "expert":
        return text
    text = str((result.data or {}).get("core_finding") or "").strip() or text
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    return text if len(ends) <= words else text[:ends[words - 1]] + " [...]"


def cache_example_needed(plan: Plan, results: list[TaskResult], always: bool = False) -> bool:
    """Whether the judge sees the semantic cache's example: it is the lowest-priority source, so it can only fill a
    gap, and there is none when every expert task answered with high confidence (a failed or unsure expert, or a plan
    without experts, still shows it; `always`, MOE_JUDGE_CACHE_EXAMPLE_ALWAYS, the rule before issue 52: ~28 of a
    full request's tokens, an earlier answer to another question)."""
    if not plan.few_shot:
        return False
    sure = {r.task_id for r in results if r.kind == "expert" and r.confidence == "high" and not r.error}
    experts = {t.task_id for t in plan.tasks if t.kind == "expert"}
    return always or not experts or not experts <= sure


def _cache_block(plan: Plan, shown: bool = True) -> str:
    """The nearest of the semantic cache's examples, its answer cut at a word to CACHE_EXAMPLE_CHARS (none unless
    `shown`: `cache_example_needed`)."""
    if not (plan.few_shot and shown):
        return ""
    shot = min(plan.few_shot, key=lambda s: s.distance)
    answer = shot.answer.strip()
    if len(answer) > CACHE_EXAMPLE_CHARS:
        answer = answer[:CACHE_EXAMPLE_CHARS].rsplit(" ", 1)[0] + " [...]"
    return f"\n\n[cache] a similar earlier question, lowest priority:\nQ: {shot.question}\nA: {answer}"


def thinking_messages(plan: Plan, results: list[TaskResult]) -> list[dict[str, str]]:
    """The question and the sources; the cache's examples reach the judge only (with this step's notes).
    The question stays: it is what ties a model call to its request (the e2e tests find a request's calls
    by it). The trust order is the sources' order (`_blocks`), so it is said, not spelled out again."""
    system = ("Before answering, think briefly about the sources (most trusted first): agreement, "
              "contradictions, which to trust, gaps, one short line each, not the answer.")
    prompt_used("merger.thinking", system)
    user = f"Question: {plan.question}\n\n{_blocks(results, key_message)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def trust_rule(results: list[TaskResult], plan: Plan, cache: bool = True) -> list[str]:
    """The trust order of the kinds of source the judge sees (the cache's example, when `cache` shows it, counts as
    one), as one rule; none when it sees one kind only (nothing to order: the classes it does not see are prompt
    tokens for nothing)."""
    present = {source_class(r) for r in results} | ({"cache"} if plan.few_shot and cache else set())
    if len(present) < 2:
        return []
    return [f"If they disagree, trust: {' > '.join(c for c in PRIORITY if c in present)}."]


def judge_messages(plan: Plan, results: list[TaskResult], reasoning: str, mode: Mode,
                   insight_block: bool = True, cache_always: bool = False) -> list[dict[str, str]]:
    fmt = plan.params.response_format
    cache = cache_example_needed(plan, results, cache_always)
    if fmt is not None:  # the client's format is the answer's shape: no mode shape, tags or insight block in it
        return structured_judge_messages(plan, results, reasoning, fmt, cache)
    rules = [
        "Merge the sources into one correct, complete, direct answer that never mentions them.",
        *trust_rule(results, plan, cache),
    ]
    if any(r.kind == "tool" for r in results):  # (only then: without a tool result the rule is noise)
        rules.append("Precision tools are exact: quote each one's result verbatim, its figures exactly as computed.")
    if any(r.kind == "graph" for r in results):
        rules.append("After each knowledge-graph fact write [REF:<entity>] naming its entity.")
    if any(r.kind == "research" for r in results):
        rules.append("Cite web facts as [n], the web result's number.")
    if mode.judge_instruction:
        rules.append(mode.judge_instruction)
    if insight_block and len(results) >= 2:  # a synthesis of several results may hold an insight (merger.insight)
        rules.append(insight.RULE)
    prompt_used("merger.judge", " ".join(rules))
    thinking = f"Thinking so far:\n{reasoning.strip()}\n\n" if reasoning.strip() else ""
    user = f"Question: {plan.question}\n\n{thinking}Sources:\n{_blocks(results)}{_cache_block(plan, cache)}"
    return [{"role": "system", "content": " ".join(rules)}, {"role": "user", "content": user}]


def structured_judge_messages(plan: Plan, results: list[TaskResult], reasoning: str,
                              fmt: ResponseFormat, cache: bool = True) -> list[dict[str, str]]:
    """The judge of a structured request: the same sources and trust order; the answer is the client's JSON (its
    call is constrained to the format too), with the precision tools' figures as computed."""
    rules = ["Merge the sources into one correct, complete answer.", *trust_rule(results, plan, cache)]
    if any(r.kind == "tool" for r in results):
        rules.append("Precision tools are exact: use each one's result exactly as computed.")
    prompt_used("merger.judge.structured", " ".join([*rules, structured.template(fmt)]))  # not the client's schema
    rules.append(structured.instruction(fmt))
    thinking = f"Thinking so far:\n{reasoning.strip()}\n\n" if reasoning.strip() else ""
    user = f"Question: {plan.question}\n\n{thinking}Sources:\n{_blocks(results)}{_cache_block(plan, cache)}"
    return [{"role": "system", "content": " ".join(rules)}, {"role": "user", "content": user}]


def computed_figure(result: TaskResult) -> str:
    """What a precision tool computed: the text after its last ' = ' (`SHA-256('abc') = ba78…` -> `ba78…`),
    or its whole (single-line) content."""
    text = result.content.strip()
    return text.rsplit(" = ", 1)[-1].strip() if " = " in text else text


def keep_computed(answer: str, results: list[TaskResult]) -> str:
    """The judge's answer, with every precision tool's result it did not keep verbatim appended as computed:
    a figure the user is told was computed is never paraphrased, rounded or dropped by a model."""
    lost = [r.content.strip() for r in results
            if r.kind == "tool" and r.content.strip() and computed_figure(r) not in answer]
    return answer + "".join(f"\n\nComputed exactly: {text}" for text in dict.fromkeys(lost))


def render_plan(plan: Plan) -> str:
    """The `-plan` mode's preface: the plan the orchestrator made."""
    lines = [f"{i}. [{t.kind}] {t.category}: {t.instruction}" for i, t in enumerate(plan.tasks, 1)]
    return "Plan:\n" + "\n".join(lines)
