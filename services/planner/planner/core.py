"""Pure planning logic: the prompt, the output schema, sanitising and the fallback plan."""

from __future__ import annotations

import json
from typing import Any

from moe_core.contracts import EXPERT_CATEGORIES, ChatMessage, PlannedTask

MAX_INSTRUCTION_CHARS = 2000
# Bounds what a constrained model may generate: small models otherwise repeat until max_tokens.
MAX_PLANNED_INSTRUCTION = 160


def plan_schema(categories: list[str], max_tasks: int) -> dict[str, Any]:
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


def planner_messages(question: str, categories: list[str], max_tasks: int) -> list[dict[str, str]]:
    catalogue = "\n".join(f"- {c}: {EXPERT_CATEGORIES.get(c, c)}" for c in categories)
    system = (
        "You split a user's question into 1 to "
        f"{max_tasks} independent tasks for specialist experts. Use as few tasks as possible; "
        "a simple question is exactly one task. Categories:\n"
        f"{catalogue}\n"
        'Answer only with JSON: {"tasks": [{"category": "...", "instruction": "..."}]}'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def last_user_question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content.strip()
    return messages[-1].content.strip()


def sanitise(raw: str, categories: list[str], max_tasks: int) -> list[PlannedTask]:
    """Keep the well-formed tasks of a model's plan; anything malformed is dropped."""
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
    return tasks


def fallback_plan(question: str) -> list[PlannedTask]:
    return [PlannedTask(task_id="t1", category="general", instruction=question[:MAX_INSTRUCTION_CHARS])]
