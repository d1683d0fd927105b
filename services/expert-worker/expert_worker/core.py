"""Pure expert logic: prompts per category and parsing of the confidence tag."""

from __future__ import annotations

import re
from typing import Any

from expert_worker.passthrough import agent_messages, is_passthrough, wire
from moe_core.contracts import EXPERT_CATEGORIES, Confidence, ExpertTask
from moe_core.modes import expert_suffix

_CONFIDENCE = re.compile(r"^\W*confidence\W*[:=]?\s*\**\s*(high|medium|low)\b.*$", re.IGNORECASE | re.MULTILINE)


def system_prompt(category: str) -> str:
    focus = EXPERT_CATEGORIES.get(category, EXPERT_CATEGORIES["general"])
    return (
        f"You are the {category} expert of a team; your field: {focus}. Answer the task precisely and "
        "briefly. End with one line: CONFIDENCE: high, medium or low."
    )


def expert_messages(task: ExpertTask) -> list[dict[str, Any]]:
    system = system_prompt(task.category) + expert_suffix(task.mode)
    if is_passthrough(task):  # agents: the conversation itself, with tool calls and results
        return agent_messages(task, system)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages += [wire(m) for m in task.history]
    user = task.instruction
    if task.question and task.question not in task.instruction:
        user = f"{task.instruction}\n\n(The user's question: {task.question})"
    messages.append({"role": "user", "content": user})
    return messages


def parse_output(text: str, max_chars: int) -> tuple[str, Confidence]:
    """Split the confidence tag from the answer; a missing tag means medium."""
    confidence: Confidence = "medium"
    matches = list(_CONFIDENCE.finditer(text))
    if matches:
        confidence = matches[-1].group(1).lower()  # type: ignore[assignment]
        text = _CONFIDENCE.sub("", text)
    return text.strip()[:max_chars], confidence
