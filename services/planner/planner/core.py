"""Pure planning logic: the prompt, the output schema, sanitising and the fallback plan."""

from __future__ import annotations

import json
from typing import Any

from moe_core.contracts import ChatMessage, PlannedTask
from moe_core.contracts.tools import PRECISION_CATEGORY
from moe_core.runtime.run_versions import prompt_used
from planner import research_tasks
from planner.tool_catalogue import ToolCatalogue

MAX_INSTRUCTION_CHARS = 2000
# Bounds what a constrained model may generate: small models otherwise repeat until max_tokens.
MAX_PLANNED_INSTRUCTION = 160


def plan_schema(categories: list[str], max_tasks: int, tools: ToolCatalogue | None = None,
                research: bool = False) -> dict[str, Any]:
    """The JSON Schema the planner model's output is constrained to; with `tools`, a task may be a tool task
    (kind "tool", category "precision", a tool name and its args); with `research`, a research task (kind
    "research", a web search query; planner.research_tasks)."""
    schema = _task_schema(categories, max_tasks)
    if tools is not None and tools.names:
        item = schema["properties"]["tasks"]["items"]
        item["properties"] = {"kind": {"type": "string", "enum": ["expert", "tool"]}, **item["properties"],
                              "tool": {"type": "string", "enum": tools.names}, "args": {"type": "object"}}
        item["properties"]["category"] = {"type": "string", "enum": [*categories, PRECISION_CATEGORY]}
    return research_tasks.extend_schema(schema) if research else schema


def _task_schema(categories: list[str], max_tasks: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_tasks,
                "items": {
                    "type": "object",
                    "properties": {
                        "category": {"type": "string", "enum": categories},
                        "instruction": {"type": "string", "minLength": 1, "maxLength": MAX_PLANNED_INSTRUCTION},
                    },
                    "required": ["category", "instruction"],
                },
            }
        },
        "required": ["tasks"],
    }


def planner_messages(question: str, categories: list[str], max_tasks: int, tools: ToolCatalogue | None = None,
                     research: bool = False, learned: list[str] | None = None) -> list[dict[str, str]]:
    """The planner model's messages; `learned`: expert combinations users rated well (planner.learned_patterns)."""
    catalogue = ", ".join(categories)  # names only: they say what they cover (each name is prompt tokens)
    system = (
        f"Split the question into 1-{max_tasks} independent expert tasks, as few as possible. "
        f"Categories (else general): {catalogue}.\n"
        'JSON only: {"tasks": [{"category": "...", "instruction": "..."}]}'
    )
    if tools is not None and tools.names:
        system += "\n" + tools.prompt()
    if research:
        system += "\n" + research_tasks.PROMPT
    if learned:
        system += f"\nWell-rated combinations (reuse one that fits): {', '.join(learned)}."
    prompt_used("planner.plan", system)
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def last_user_question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content.strip()
    return messages[-1].content.strip()


def sanitise(raw: str, categories: list[str], max_tasks: int, tools: ToolCatalogue | None = None,
             research: bool = False) -> list[PlannedTask]:
    """Keep the well-formed tasks of a model's plan; anything malformed is dropped. A tool task must name an
    offered tool with arguments valid for its schema; otherwise it becomes an expert task (its instruction
    still deserves an answer). A research task (when offered) needs a query; several become one."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return []
    items = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return []
    tasks: list[PlannedTask] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        if research_tasks.is_research(item):  # without a query it is rejected (dropped), never guessed
            if research and (found := research_tasks.from_item(item, len(tasks) + 1)) is not None:
                tasks.append(found)
            if len(tasks) == max_tasks:
                break
            continue
        if item.get("kind", "tool" if "tool" in item else "expert") == "tool":
            tool_task = _tool_task(item, tools, len(tasks) + 1)
            if tool_task is None:  # a malformed tool task: its instruction goes to an expert
                item = {"category": item.get("category") if item.get("category") in categories else "general",
                        "instruction": item.get("instruction")}
            else:
                key = (f"tool:{tool_task.tool}", json.dumps(tool_task.args, sort_keys=True))
                if key not in seen:
                    seen.add(key)
                    tasks.append(tool_task)
                if len(tasks) == max_tasks:
                    break
                continue
        category, instruction = item.get("category"), item.get("instruction")
        if not isinstance(category, str) or category not in categories:
            continue
        if not isinstance(instruction, str) or not instruction.strip():
            continue
        instruction = instruction.strip()[:MAX_INSTRUCTION_CHARS]
        key = (category, instruction.lower())
        if key in seen:
            continue
        seen.add(key)
        tasks.append(PlannedTask(task_id=f"t{len(tasks) + 1}", category=category, instruction=instruction))
        if len(tasks) == max_tasks:
            break
    return research_tasks.merged(tasks)


def _tool_task(item: dict[str, Any], tools: ToolCatalogue | None, number: int) -> PlannedTask | None:
    tool, args = item.get("tool"), item.get("args", {})
    if tools is None or not isinstance(tool, str) or not tools.valid(tool, args):
        return None
    instruction = item.get("instruction")
    text = instruction.strip()[:MAX_INSTRUCTION_CHARS] if isinstance(instruction, str) and instruction.strip() \
        else f"{tool} {json.dumps(args)}"[:MAX_INSTRUCTION_CHARS]
    return PlannedTask(task_id=f"t{number}", kind="tool", category=PRECISION_CATEGORY, instruction=text, tool=tool,
                       args=args)


def fallback_plan(question: str) -> list[PlannedTask]:
    return [PlannedTask(task_id="t1", category="general", instruction=question[:MAX_INSTRUCTION_CHARS])]
