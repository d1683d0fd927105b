"""Client housekeeping: the requests a chat client makes for itself (Open WebUI's chat title, tags, follow-up
suggestions, search queries, autocomplete, image prompt). The edge recognises them (`recognise`) and publishes
them on the `housekeeping` topic instead of `requests`; the planner stage answers each with one small-model
call (planner.housekeeping): no plan, no experts, no graph ingest, no cache write.

Recognised by the templates' shape (Open WebUI's DEFAULT_*_PROMPT_TEMPLATE, backend/open_webui/config.py):
the last message is the user's and begins with `### Task:`, the chat is quoted inside `<chat_history>`, and
the instructions before it ask for one JSON key (`{ "title": ...`). The key decides the kind; only the
template's own text before `<chat_history>` is read, never the quoted chat. An ordinary question (even one
about titles) has neither the header nor the quoted history and takes the normal path.
"""

from __future__ import annotations

import re

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.contracts import ChatRequest

HEADER = "### Task:"
HISTORY = ("<chat_history>", "</chat_history>")
# kind -> the JSON key its template asks for (checked in this order)
KINDS: dict[str, str] = {"title": "title", "tags": "tags", "follow_ups": "follow_ups", "queries": "queries",
                         "autocomplete": "text", "image_prompt": "prompt"}
_KEYS = {kind: re.compile(r'\{\s*"' + key + r'"\s*:') for kind, key in KINDS.items()}


class HousekeepingSwitch(BaseSettings):
    """The edge's part: whether housekeeping takes the cheap path at all."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    housekeeping_enabled: bool = Field(default=True, description="Answer client housekeeping requests (Open "
                                       "WebUI's title, tags, follow-ups, queries, autocomplete) with one small-model "
                                       "call instead of the pipeline")


class HousekeepingSettings(BaseSettings):
    """The planner's part: the one model call."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    housekeeping_model: str = Field(default="", description="Its model, `model` or `model@server`; empty: the "
                                    '"housekeeping" role of MODEL_ASSIGNMENTS, else its "default"')
    housekeeping_max_tokens: int = Field(default=256, ge=16, le=4096, description="Its completion budget")


def recognise(request: ChatRequest) -> str | None:
    """The housekeeping kind of a request, or None for anything else."""
    if request.tools or not request.messages or request.messages[-1].role != "user":
        return None
    if any(m.role not in ("system", "developer") for m in request.messages[:-1]):
        return None  # a client's housekeeping prompt stands alone (a system prompt at most)
    text = request.messages[-1].content.lstrip()
    start = text.find(HISTORY[0])
    if not text.startswith(HEADER) or start < 0 or text.rfind(HISTORY[1]) < start:
        return None
    instructions = text[:start]
    return next((kind for kind, key in _KEYS.items() if key.search(instructions)), None)
