"""Open WebUI's housekeeping prompts as it sends them: its default templates (tests/data/openwebui_templates,
with their origin) filled the way backend/open_webui/utils/task.py fills them, as one user message."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "openwebui_templates"
KINDS = {"title": "title", "tags": "tags", "follow_up": "follow_ups", "query": "queries",
         "autocomplete": "autocomplete", "image_prompt": "image_prompt"}  # file -> the gateway's kind


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.txt").read_text(encoding="utf-8")[:-1]  # the file adds one line break


def _messages_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)


def render(name: str, chat: list[dict[str, Any]], prompt: str = "", kind: str = "General") -> str:
    """The template with {{MESSAGES:END:n}}, {{prompt}}/{{PROMPT}}, {{CURRENT_DATE}} and {{TYPE}} filled."""
    last_user = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
    text = re.sub(r"\{\{MESSAGES:END:(\d+)\}\}", lambda m: _messages_text(chat[-int(m.group(1)):]), template(name))
    text = text.replace("{{prompt}}", last_user).replace("{{PROMPT}}", prompt or last_user)
    return text.replace("{{CURRENT_DATE}}", date.today().isoformat()).replace("{{TYPE}}", kind)


def request_messages(name: str, chat: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """What Open WebUI posts for this task: the filled template as the only (user) message."""
    return [{"role": "user", "content": render(name, chat, **kwargs)}]
