"""Experts under modes: the mode's suffix in the system prompt, agents' conversations passed through with
their tools, tool calls returned in the result, and a cancelled request making no model call."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from expert_worker.app import create_app
from expert_worker.core import expert_messages
from expert_worker.settings import ExpertSettings
from moe_core.contracts import Cancel, ChatMessage, ExpertTask, TaskResult, deadline_in
from moe_core.runtime.bus import Bus
from tests.support.in_memory import collect, scripted_inference
from tests.support.scripted_llm import create_app as scripted_llm

pytestmark = pytest.mark.unit
TOOL = {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "call_7", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}
AGENT_HISTORY = [ChatMessage(role="system", content="You are Cline."), ChatMessage(role="user", content="Fix a.py"),
                 ChatMessage(role="assistant", content="", tool_calls=[CALL]),
                 ChatMessage(role="tool", content="print(1", tool_call_id="call_7")]


def _task(rid: str, mode: str = "moe-orchestrator", **kw: Any) -> ExpertTask:
    fields: dict[str, Any] = {"instruction": "Fix a.py", "question": "Fix a.py", **kw}
    return ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                      category="code_reviewer", mode=mode, **fields)


def test_the_mode_reaches_the_expert_system_prompt() -> None:
    concise = expert_messages(_task("r", "moe-orchestrator-concise"))[0]["content"]
    assert concise.endswith("Be concise: at most 120 words.")
    code = expert_messages(_task("r", "moe-orchestrator-code"))[0]["content"]
    assert "code only" in code
    assert "Be concise" not in expert_messages(_task("r"))[0]["content"]


def test_a_direct_task_is_what_the_user_would_send_the_model() -> None:
    """A trivial question: no expert role, no output protocol, no few-shot; the client's system prompt
    and the mode's instruction stay."""
    history = [ChatMessage(role="system", content="Answer in French."), ChatMessage(role="user", content="hi"),
               ChatMessage(role="assistant", content="salut")]
    plain = expert_messages(_task("r", question="Translate 'room 101'", direct=True))
    assert plain == [{"role": "user", "content": "Translate 'room 101'"}]
    messages = expert_messages(_task("r", "moe-orchestrator-concise", question="Translate 'room 101'",
                                     direct=True, history=history))
    assert messages[0] == {"role": "system", "content": "Answer in French.\n\nBe concise: at most 120 words."}
    assert messages[1:] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "salut"},
                            {"role": "user", "content": "Translate 'room 101'"}]
    assert "CONFIDENCE" in expert_messages(_task("r"))[0]["content"]  # a planned task keeps the protocol


def test_an_agent_conversation_is_passed_through() -> None:
    messages = expert_messages(_task("r", "moe-orchestrator-agent", tools=[TOOL], history=AGENT_HISTORY))
    assert messages[0]["role"] == "system" and messages[0]["content"].endswith("\n\nYou are Cline.")
    assert messages[1:] == [{"role": "user", "content": "Fix a.py"},
                            {"role": "assistant", "content": None, "tool_calls": [CALL]},
                            {"role": "tool", "content": "print(1", "tool_call_id": "call_7"}]
    planned = _task("r", "moe-orchestrator-agent-orchestrated", tools=[TOOL], history=AGENT_HISTORY)
    planned = planned.model_copy(update={"instruction": "Review the error handling"})
    assert "Your part of the work: Review the error handling" in expert_messages(planned)[0]["content"]


def test_without_the_question_in_the_history_the_task_is_asked_as_usual() -> None:
    messages = expert_messages(_task("r", tools=[TOOL], history=[ChatMessage(role="user", content="earlier")]))
    assert messages[-1]["content"] == "Fix a.py" and messages[1] == {"role": "user", "content": "earlier"}


def _worker(namespace: str, redis: Any, rules: list[dict[str, Any]]) -> tuple[Bus, Any, list[TaskResult]]:
    llm = scripted_llm({"models": ["expert-model"], "rules": rules})
    settings = ExpertSettings(topic_namespace=namespace,
                              inference_servers='[{"name":"s","url":"http://s","models":["expert-model"]}]')
    inference = scripted_inference(settings, llm)
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, manage_broker=False)
    results = collect(bus, bus.topics.results, TaskResult)
    return bus, llm, results


@pytest.mark.infra  # real stores
async def test_tools_reach_the_model_and_its_tool_calls_come_back(redis, namespace: str) -> None:
    bus, llm, results = _worker(namespace, redis, [{"tool_calls": [{"name": "read_file",
                                                                     "arguments": {"path": "b.py"}}]}])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_task(f"r-{namespace}", "moe-orchestrator-agent", tools=[TOOL], tool_choice="auto",
                                history=AGENT_HISTORY), bus.topics.tasks_expert)
    [result] = results
    assert [c["function"]["name"] for c in result.tool_calls] == ["read_file"]
    assert result.content == "" and result.error is None
    body = llm.state.scripted.get_calls()[0]["body"]
    assert body["tools"] == [TOOL] and body["tool_choice"] == "auto"
    assert body["messages"][3] == {"role": "tool", "content": "print(1", "tool_call_id": "call_7"}


@pytest.mark.infra  # real stores
async def test_a_cancelled_request_makes_no_expert_call(redis, namespace: str) -> None:
    bus, llm, results = _worker(namespace, redis, [])
    task = _task(f"r-{namespace}")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(Cancel(**task.child_fields()), bus.topics.cancel)
        await bus.publish(task, bus.topics.tasks_expert)
    assert llm.state.scripted.get_calls() == []
    assert [(r.error, r.confidence) for r in results] == [("cancelled", "low")]
