"""Research as a planned task: the planner model may plan a web search (`kind: "research"` with a `query`)
next to expert and tool tasks when a question needs current or external facts.

What the model is offered (schema and prompt), how its research items are validated (no query, no task),
and how the plan's research tasks become one: the research stage numbers its sources [1], [2] … per task,
so one research task per plan (all its queries) keeps every number in the answer unique. The task goes
out on `tasks.research` exactly like the `-research` mode's task (planner.app.task_message). Where the
planner model was skipped (router and trivial routes), a question that plainly asks for current facts
("latest", "news", "current price", this year …) gets a research task for the question itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from moe_core.contracts import ChatRequest, Plan, PlannedTask
from planner.settings import PlannerSettings

RESEARCH_KIND = "research"
RESEARCH_CATEGORY = "research"
MAX_QUERY_CHARS = 200
MAX_QUERIES = 3  # the research stage sends at most MOE_RESEARCH_MAX_QUERIES (default 3) of them
MAX_INSTRUCTION = 2000

# Offered to a question that may need current facts only (may_need_current_facts); short (issue 52: 28 -> 18 words):
# the kind and the query are what a research item needs (is_research, from_item: the category follows from the kind,
# the instruction defaults to the query; a constrained call's schema asks for both anyway).
PROMPT = ('Needs current or external facts (news, recent events, latest versions, prices)? Add one task '
          '{"kind": "research", "query": "web search query"}.')


def extend_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The plan schema with research items allowed (kind "research", category "research", a query)."""
    item = schema["properties"]["tasks"]["items"]
    props = item["properties"]
    kinds = props.get("kind", {}).get("enum", ["expert"])
    props["kind"] = {"type": "string", "enum": [*kinds, RESEARCH_KIND]}
    props["category"] = {**props["category"], "enum": [*props["category"]["enum"], RESEARCH_CATEGORY]}
    props["query"] = {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}
    item["properties"] = props
    return schema


def is_research(item: dict[str, Any]) -> bool:
    return item.get("kind") == RESEARCH_KIND or (item.get("category") == RESEARCH_CATEGORY and "kind" not in item)


def from_item(item: dict[str, Any], number: int) -> PlannedTask | None:
    """A research task from the model's item, or None when it has no usable query (rejected: a web search
    needs something to search for; the instruction is not taken as one)."""
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        return None
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    instruction = item.get("instruction")
    text = " ".join(instruction.split())[:MAX_INSTRUCTION] if isinstance(instruction, str) and instruction.strip() \
        else query
    return PlannedTask(task_id=f"t{number}", kind="research", category=RESEARCH_CATEGORY, instruction=text,
                       args={"queries": [query]})


def merged(tasks: list[PlannedTask]) -> list[PlannedTask]:
    """The tasks with every research task folded into the first one (queries in order, no repeats, at most
    MAX_QUERIES): one research result per plan, so source numbers never collide."""
    research = [t for t in tasks if t.kind == RESEARCH_KIND]
    if len(research) < 2:
        return tasks
    queries: list[str] = []
    for task in research:
        for query in task.args.get("queries", []):
            if str(query).lower() not in {q.lower() for q in queries}:
                queries.append(str(query))
    first = research[0].model_copy(update={"args": {**research[0].args, "queries": queries[:MAX_QUERIES]}})
    return [first if t is research[0] else t for t in tasks if t.kind != RESEARCH_KIND or t is research[0]]


# Asks for what is current: cues precise enough to spend a web search on (not "current" alone: electric
# current, the current directory; not "today": "3 weeks from today" is date arithmetic). Used only where no
# planner model decided (router and trivial routes).
_CURRENT = re.compile(
    r"\b(?:latest|newest|this (?:week|month|year)|news|headlines?|"
    r"(?:current|recent|upcoming) (?:version|release|releases|price|prices|events?|president|ceo|leader|"
    r"champion|record|rates?|status|situation))\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(20\d\d)\b")
# A year as a year: after a word that introduces one ("in 2031", "the 2031 election", "since 2027") or
# before a season or an event word; not any four-digit number ("room number 2040", "port 2049").
_DATED = re.compile(
    r"\b(?:in|of|since|until|till|by|during|for|from|after|before|around|year|years|the|fiscal|fy|early|late|"
    r"mid|end of|spring|summer|autumn|fall|winter)\s+(20\d\d)\b(?!\s*(?:ms|s|kb|mb|gb|px|rpm|°|%))"
    r"|\b(20\d\d)(?:'s|s)?\s+(?:election|elections|season|olympics|world cup|budget|release|census|q[1-4])\b",
    re.IGNORECASE)


def asks_for_current_facts(question: str, now: datetime | None = None) -> bool:
    """The question asks about something current: a cue word, or this year or a later one."""
    if _CURRENT.search(question):
        return True
    year = (now or datetime.now(UTC)).year
    return any(int(a or b) >= year for a, b in _DATED.findall(question))


# May need current or external facts: looser than the cues above, since it only decides whether the planner
# model is offered research tasks (the model still decides). Without such a cue the instruction (~50 words)
# and the schema's research item are left out, as the tool catalogue is (tool_catalogue.may_help).
_MAYBE = re.compile(
    r"\b(?:current(?:ly)?|latest|newest|recent(?:ly)?|today|tonight|tomorrow|yesterday|now|nowadays|"
    r"these days|at the moment|so far|to date|as of|up to date|upcoming|ongoing|still (?:alive|open|valid)|"
    r"(?:this|next|last) (?:week|month|year|season|quarter)|news|headlines?|announce\w*|launch\w*|"
    r"releases?|released|versions?|updates?|updated|prices?|pricing|costs?|stocks?|share price|"
    r"exchange rates?|interest rates?|inflation|markets?|weather|forecast|scores?|standings|elections?|polls?|"
    r"ceo|president|prime minister|chancellor|minister|government|champions?|who (?:is|are|owns|runs|leads)|"
    r"web|online|internet|websites?|urls?|links?|look up|search|sources?|citations?|cite|population|gdp)\b",
    re.IGNORECASE)


def may_need_current_facts(question: str, now: datetime | None = None) -> bool:
    """The question might need facts a model may not have (a cue word, or a year from two years ago on):
    a superset of `asks_for_current_facts`."""
    if _MAYBE.search(question):
        return True
    year = (now or datetime.now(UTC)).year
    return any(int(y) >= year - 2 for y in _YEAR.findall(question)) or asks_for_current_facts(question, now)


def offered(question: str, settings: PlannerSettings) -> bool:
    """Whether the planner model is offered research tasks for this question (prompt and schema)."""
    return settings.planner_research_tasks and may_need_current_facts(question)


def add_for_current_facts(plan: Plan, request: ChatRequest, settings: PlannerSettings) -> Plan:
    """Augmenter: a plan the planner model did not make (router, trivial route) for a question that asks for
    current facts gets a research task searching for the question (the planner model decides for its own
    plans; a preflight or cached plan is exact or decided already)."""
    if not settings.planner_research_tasks or plan.source != "router":
        return plan
    if any(t.kind == RESEARCH_KIND for t in plan.tasks) or not asks_for_current_facts(plan.question):
        return plan
    used = {t.task_id for t in plan.tasks}
    task_id = next(f"t{n}" for n in range(1, 64) if f"t{n}" not in used)
    query = " ".join(plan.question.split())[:MAX_QUERY_CHARS]
    task = PlannedTask(task_id=task_id, kind="research", category=RESEARCH_CATEGORY,
                       instruction=plan.question[:MAX_INSTRUCTION], args={"queries": [query]})
    return plan.model_copy(update={"tasks": [*plan.tasks, task]})


def ensure_answering(plan: Plan, request: ChatRequest, settings: PlannerSettings) -> Plan:
    """Augmenter: web results are context for the judge, not an answer; a plan of research tasks only gets
    a general expert task for the question (so an empty search still leaves an answer)."""
    if not plan.tasks or any(t.kind in ("expert", "tool") for t in plan.tasks):
        return plan
    if not any(t.kind == RESEARCH_KIND for t in plan.tasks):
        return plan
    used = {t.task_id for t in plan.tasks}
    task_id = next(f"t{n}" for n in range(1, 64) if f"t{n}" not in used)
    expert = PlannedTask(task_id=task_id, category="general", instruction=plan.question[:MAX_INSTRUCTION])
    return plan.model_copy(update={"tasks": [*plan.tasks, expert]})
