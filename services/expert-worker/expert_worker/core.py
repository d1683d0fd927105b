"""Pure expert logic: the prompt of a task (system prompt, mode, few-shot examples, compressed history)."""

from __future__ import annotations

from typing import Any

from expert_worker.history import compress, few_shot_block
from expert_worker.passthrough import agent_messages, is_passthrough, wire
from expert_worker.prompts import system_prompt
from expert_worker.protocol import parse
from moe_core.contracts import Confidence, ExpertTask
from moe_core.llm import structured
from moe_core.llm.modes import expert_suffix
from moe_core.runtime.run_versions import prompt_used

__all__ = ["expert_messages", "parse_output", "system_prompt"]


def expert_messages(task: ExpertTask, *, history_turns: int = 4, history_chars: int = 3000,
                    few_shot_chars: int = 3000) -> list[dict[str, Any]]:
    system = system_prompt(task.category) + expert_suffix(task.mode)
    if is_passthrough(task):  # agents: the conversation itself, with tool calls and results
        prompt_used(f"expert.agent.{task.category}", system)
        return agent_messages(task, system)
    if task.direct:  # a trivial question: what the user would send the model, plus what the mode asks
        fmt = task.params.response_format  # structured output: its JSON instead of the mode's shape
        asked = structured.instruction(fmt) if fmt is not None else expert_suffix(task.mode).strip()
        if fmt is not None:  # the template, not the client's schema (data)
            prompt_used("expert.direct.structured", structured.template(fmt))
        else:
            prompt_used("expert.direct", asked)  # (the user's own system text is theirs)
        system_parts = [m.content for m in task.history if m.role == "system"] + [asked]
        own = "\n\n".join(p for p in system_parts if p)
        direct: list[dict[str, Any]] = [{"role": "system", "content": own}] if own else []
        direct += [wire(m) for m in compress(task.history, history_turns, history_chars)]
        return [*direct, {"role": "user", "content": task.question or task.instruction}]
    prompt_used(f"expert.{task.category}", system)  # the template, before the examples (data, not template)
    system += few_shot_block(task.few_shot, few_shot_chars)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages += [wire(m) for m in compress(task.history, history_turns, history_chars)]
    user = task.instruction
    if task.question and task.question not in task.instruction:
        user = f"{task.instruction}\n\n(Question: {task.question})"
    messages.append({"role": "user", "content": user})
    return messages


def parse_output(text: str, max_chars: int) -> tuple[str, Confidence]:
    """The answer shown to users and its confidence (see expert_worker.protocol for the whole output)."""
    output = parse(text, max_chars)
    return output.content, output.confidence
