"""Agents' conversations passed through to the expert model: the client's own system prompt, the tool
calls the model made and the tool results the client sent, as the client sent them."""

from __future__ import annotations

from typing import Any

from moe_core.contracts import ChatMessage, ExpertTask

SYSTEM_ROLES = ("system", "developer")


def wire(message: ChatMessage) -> dict[str, Any]:
    """One message in OpenAI form, tool fields included."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = message.tool_calls
        out["content"] = message.content or None
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def is_passthrough(task: ExpertTask) -> bool:
    """A task with tools whose history is the client's whole conversation (the planner sends it so)."""
    return bool(task.tools) and any(m.role == "user" and task.question in m.content for m in task.history)


def agent_messages(task: ExpertTask, system: str) -> list[dict[str, Any]]:
    """The expert's system prompt (with its part of the plan, plus the client's), then the conversation."""
    client_system = "\n\n".join(m.content for m in task.history if m.role in SYSTEM_ROLES and m.content.strip())
    if task.instruction.strip() and task.instruction.strip() != task.question.strip():
        system = f"{system}\nYour part of the work: {task.instruction.strip()}"
    prompt = f"{system}\n\n{client_system}" if client_system else system
    return [{"role": "system", "content": prompt},
            *(wire(m) for m in task.history if m.role not in SYSTEM_ROLES)]
