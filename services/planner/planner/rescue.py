"""Tool tasks the preflight missed (issue 30): when a plan (the planner model's, the fallback's or the router's)
has no tool task, the preflight's grammars get a second look before the question goes to an expert.

Two readings, each correct before complete:
- a task's instruction: the model split the question and wrote one part as a plain request ("Compute the
  broadcast address of 10.0.0.0/24"); the preflight claims it, and every number, quoted text and content
  word of that instruction comes from the question (a model's paraphrase may reword the request, never
  its values), so the tool task replaces the expert task;
- the question's clauses: context around a tool question ("I'm setting up my lab: what's the broadcast
  address of 192.168.1.0/24?"); a clause the preflight claims becomes a tool task beside the expert tasks,
  but only when the claimed clauses bind every number, number word and quote of the question (else which
  values belong to the tool is a guess); the expert tasks stay, so the model still reads the whole question.
Anything else leaves the plan as it was."""

from __future__ import annotations

import json
import re
from collections import Counter

from moe_core.contracts import PlannedTask
from planner.preflight import WORD_RUN, recognise, take_quotes
from planner.tool_catalogue import ToolCatalogue

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
DIGITS = re.compile(r"(?<!\w)(?<![^\W\d_]-)\d+")  # a number, not part of a name (MD5, SHA-256, M12ab)
WORDS = re.compile(r"[^\W\d_]+")
# where one clause ends and the next begins: a sentence end, a colon or semicolon, a dash, a comma before a
# new clause; never inside a number ("3.5", "2,000") or an address
CLAUSE = re.compile(r"(?<=[?!.;:])\s+|(?<=[^\W\d_])\s+(?:--?|[\u2013\u2014])\s+(?=[^\W\d_])"
                    r"|,\s+(?=(?:and|but|so|then|now|what|how|which|can|could|would|please|tell|give|i|is|are|does|do)\b)",
                    I)
# the words a planner model adds when it rewrites a request as an instruction
REQUEST_WORDS = {"calculate", "compute", "determine", "find", "work", "out", "give", "provide", "state", "return",
                 "get", "tell", "user", "the", "a", "an", "of", "for", "what", "is", "value", "exact", "answer",
                 "result", "please", "convert", "and", "in", "to", "s", "address", "number"}


def _digits(text: str) -> Counter[str]:
    return Counter(DIGITS.findall(text))


def _grounded(instruction: str, question: str) -> bool:
    """Every number, quoted text and content word of the instruction is in the question."""
    text, quoted = take_quotes(instruction)
    q_text, q_quoted = take_quotes(question)
    if _digits(text) - _digits(q_text) or any(part not in q_quoted for part in quoted):
        return False
    known = {w.lower() for w in WORDS.findall(q_text)} | REQUEST_WORDS
    return {w.lower() for w in WORDS.findall(re.sub(r"QUOTED\d", " ", text))} <= known


def clauses(question: str) -> list[str]:
    """The question's clauses (sentences, and parts split by colons, semicolons, dashes and clause commas)."""
    return [part.strip(" ,") for part in CLAUSE.split(question.strip()) if part.strip(" ,")]


def _claimed_clauses(question: str, tools: ToolCatalogue) -> list[PlannedTask] | None:
    parts = clauses(question)
    if len(parts) < 2:
        return None  # the whole question was the preflight's to claim, and it did not
    # a clause with a number or number word must be claimed, so those are read first and the first one left
    # unclaimed ends the look without reading the others (the outcome is the same: issue 52, ~1.3 ms of CPU per
    # full question whose first clause holds a year)
    valued = [bool(DIGITS.search(p) or WORD_RUN.search(p)) for p in parts]
    found: dict[int, PlannedTask | None] = {}
    for i in sorted(range(len(parts)), key=lambda i: not valued[i]):
        found[i] = recognise(parts[i], tools)
        if found[i] is None and valued[i]:
            return None
    claimed = [(part, task) for i, part in enumerate(parts) if (task := found[i]) is not None]
    if not claimed:
        return None
    _, quoted = take_quotes(question)
    bound = sum((Counter(take_quotes(part)[1]) for part, _ in claimed), Counter[str]())
    if Counter(quoted) - bound:
        return None  # a quote outside the claimed clauses
    return [task for _, task in claimed]


def rescue(question: str, tasks: list[PlannedTask], tools: ToolCatalogue, max_tasks: int) -> list[PlannedTask]:
    """The plan's tasks with the tool tasks the preflight finds in it (see the module docstring); unchanged
    when the plan already has a tool task or nothing is found unambiguously."""
    if any(t.kind == "tool" for t in tasks):
        return tasks
    out: list[PlannedTask] = []
    for task in tasks:  # grounded first: a few regular expressions, where the preflight's grammars take ~0.4 ms
        found = recognise(task.instruction, tools) \
            if task.kind == "expert" and _grounded(task.instruction, question) else None
        out.append(task if found is None else found.model_copy(update={"instruction": task.instruction}))
    if any(t.kind == "tool" for t in out):
        return _numbered(_unique(out))
    extra = _claimed_clauses(question, tools) or []
    if not extra or len(out) + len(extra) > max_tasks:
        return tasks
    return _numbered(_unique(extra + out))


def _unique(tasks: list[PlannedTask]) -> list[PlannedTask]:
    seen: set[str] = set()
    out = []
    for task in tasks:
        key = f"{task.tool}:{json.dumps(task.args, sort_keys=True)}" if task.kind == "tool" else \
            f"{task.kind}:{task.category}:{task.instruction.lower()}"
        if key not in seen:
            seen.add(key)
            out.append(task)
    return out


def _numbered(tasks: list[PlannedTask]) -> list[PlannedTask]:
    return [t.model_copy(update={"task_id": f"t{i}"}) for i, t in enumerate(tasks, 1)]
