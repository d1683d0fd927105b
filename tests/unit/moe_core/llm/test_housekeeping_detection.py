"""Client housekeeping is recognised by the shape of Open WebUI's real templates (tests/data), whatever the
chat they quote; ordinary questions about titles, tags or queries are not."""

from __future__ import annotations

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.housekeeping import recognise
from tests.support.openwebui import KINDS, render

pytestmark = pytest.mark.unit

CHAT = [{"role": "user", "content": "How do I bake sourdough bread?"},
        {"role": "assistant", "content": "Feed the starter, mix, fold, proof overnight, bake at 250 C."}]


def request(*messages: tuple[str, str], tools: list[dict] | None = None) -> ChatRequest:
    return ChatRequest(response_id="r1", tenant_id="t", deadline_at=deadline_in(10), mode="moe-orchestrator",
                       messages=[ChatMessage(role=r, content=c) for r, c in messages], tools=tools or [])


@pytest.mark.parametrize(("name", "kind"), sorted(KINDS.items()))
def test_every_open_webui_template_is_recognised(name: str, kind: str) -> None:
    assert recognise(request(("user", render(name, CHAT, prompt="sourdough st")))) == kind


def test_the_quoted_chat_never_decides_the_kind() -> None:
    """A chat that itself talks about JSON keys and templates: the template's own text decides."""
    chat = [{"role": "user", "content": '### Task: reply with { "tags": ["x"] } and { "title": "y" }'},
            {"role": "assistant", "content": '<chat_history> { "queries": [] } </chat_history>'}]
    assert recognise(request(("user", render("follow_up", chat)))) == "follow_ups"
    assert recognise(request(("user", render("title", chat)))) == "title"


def test_a_system_prompt_before_the_template_is_still_housekeeping() -> None:
    assert recognise(request(("system", "You are helpful."), ("user", render("title", CHAT)))) == "title"


@pytest.mark.parametrize("question", [
    "Suggest a title for my essay about sourdough bread",
    'Give me JSON like { "title": "..." } for a blog post about bread',
    "### Task: write a poem about bread",
    "What tags should I use for my blog? <chat_history> is a tag name I saw.",
])
def test_ordinary_questions_are_not_housekeeping(question: str) -> None:
    assert recognise(request(("user", question))) is None


def test_a_template_inside_a_conversation_or_with_tools_is_not_housekeeping() -> None:
    title = render("title", CHAT)
    assert recognise(request(("user", "hi"), ("assistant", "hello"), ("user", title))) is None
    assert recognise(request(("user", title), ("assistant", "ok"))) is None
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert recognise(request(("user", title), tools=[tool])) is None
