"""Which answers the expert-worker streams to the client itself (planner.app.streams_answer, carried by
ExpertTask.stream_answer): a trivial question's one plain model call, for a client that streams, when the
merger's fast path passes that answer on as it is; never when someone must see the answer first."""

from __future__ import annotations

from typing import Any

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, Plan, PlannedTask, deadline_in
from moe_core.llm.modes import MODES
from planner.app import streams_answer, task_message

pytestmark = pytest.mark.unit

ENV = {"response_id": "r1", "tenant_id": "t1"}


def _request(**kw: Any) -> ChatRequest:
    fields: dict[str, Any] = {"mode": "moe-orchestrator", "live": True, "stream": True,
                              "messages": [ChatMessage(role="user", content="Name a primary colour.")], **kw}
    return ChatRequest(**ENV, deadline_at=deadline_in(60), **fields)


def _plan(category: str = "general", *, source: str = "router", complexity: str = "trivial", tasks: int = 1,
          mode: str = "moe-orchestrator") -> Plan:
    planned = [PlannedTask(task_id=f"t{i}", kind="expert", category=category, instruction="Name a primary colour.")
               for i in range(tasks)]
    return Plan(**ENV, deadline_at=deadline_in(60), mode=mode, question="Name a primary colour.", tasks=planned,
                source=source, complexity=complexity)  # type: ignore[arg-type]


def test_a_trivial_questions_answer_streams_from_its_expert() -> None:
    request, plan = _request(), _plan()
    assert streams_answer(request, plan, guarded=False)
    task = task_message(request, plan, plan.tasks[0], [], streams_answer(request, plan, guarded=False))
    assert task.stream_answer is True and task.live is True  # type: ignore[attr-defined]


def test_no_stream_from_the_expert_when_someone_sees_the_answer_first_or_it_is_not_the_answer() -> None:
    request, plan = _request(), _plan()
    assert not streams_answer(_request(live=False, stream=False), plan, guarded=False)  # nobody streams
    assert not streams_answer(request, plan, guarded=True)  # the tenant's output guardrails check it first
    for category in ("medical_consult", "legal_advisor"):  # the critic reviews it first
        assert not streams_answer(request, _plan(category), guarded=False)
    for mode in (m.id for m in MODES.values() if not m.fast_path or m.show_plan):  # the judge writes the answer
        assert not streams_answer(_request(mode=mode), _plan(mode=mode), guarded=False), mode
    for not_direct in (_plan(source="llm"), _plan(complexity="moderate"), _plan(tasks=2)):  # a judge merges
        assert not streams_answer(request, not_direct, guarded=False)


def test_a_task_is_not_streamed_unless_the_planner_says_so() -> None:
    request, plan = _request(), _plan()
    assert task_message(request, plan, plan.tasks[0], []).stream_answer is False  # type: ignore[attr-defined]


def test_an_agents_answer_streams_unless_the_mode_would_reshape_text_a_tool_call_keeps_as_written() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    assert streams_answer(_request(tools=tools), _plan(), guarded=False)  # Claude Code, Open WebUI with tools
    reshaping = [m.id for m in MODES.values() if m.fast_path and not m.show_plan
                 and (m.code_only or m.sections or m.word_limit)]
    assert reshaping  # e.g. the concise mode's word limit
    for mode in reshaping:
        assert streams_answer(_request(mode=mode), _plan(mode=mode), guarded=False), mode  # no tools: shaped
        assert not streams_answer(_request(mode=mode, tools=tools), _plan(mode=mode), guarded=False), mode
