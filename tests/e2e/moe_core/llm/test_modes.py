"""Every mode through the whole fleet with the official openai SDK, streamed and not (scripted models and a
scripted SearXNG): each mode's behaviour shows in the answer and in the calls the models received."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from expert_worker.prompts import PROMPTS
from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, expected_usage, plan_reply
from tests.e2e.research_fixtures import Searx
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e
THINK = "think briefly"  # in the merger's thinking prompt
READ_FILE = {"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                              "parameters": {"type": "object",
                                                             "properties": {"path": {"type": "string"}}}}}
LONG = " ".join(f"word{i}" for i in range(200))
CODE = "```python\ndef add(a, b):\n    return a + b\n```"


@dataclass
class Reply:
    content: str
    reasoning: str
    finish: str
    usage: tuple[int, int]
    moe: dict[str, Any]  # the fleet's own fields (the completion's or the final chunk's `moe`)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


async def ask(client: openai.AsyncOpenAI, mode: str, question: str, stream: bool, **kw: Any) -> Reply:
    messages = [{"role": "user", "content": question}]
    if not stream:
        r = await client.chat.completions.create(model=mode, messages=messages, **kw)  # type: ignore[arg-type]
        message = r.choices[0].message
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
        assert r.usage is not None
        return Reply(message.content or "", getattr(message, "reasoning_content", None) or "",
                     r.choices[0].finish_reason, (r.usage.prompt_tokens, r.usage.completion_tokens),
                     moe(r), calls)  # type: ignore[arg-type]
    content, reasoning, finish, usage, fields = "", "", "", (0, 0), {}
    parts: dict[int, dict[str, str]] = {}
    async for chunk in await client.chat.completions.create(model=mode, messages=messages, stream=True,  # type: ignore[arg-type]
                                                            stream_options={"include_usage": True}, **kw):
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        reasoning += getattr(delta, "reasoning_content", None) or ""
        for call in delta.tool_calls or []:
            part = parts.setdefault(call.index, {"name": "", "arguments": ""})
            part["name"] += (call.function.name or "") if call.function else ""
            part["arguments"] += (call.function.arguments or "") if call.function else ""
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            fields = moe(chunk)
    calls = [(p["name"], json.loads(p["arguments"])) for _, p in sorted(parts.items())]
    return Reply(content, reasoning, finish, usage, fields, calls)


def _system(call: dict[str, Any]) -> str:
    return "\n".join(m.get("content") or "" for m in call["messages"] if m.get("role") == "system")


def _mentions(system: str, category: str) -> bool:
    """The system prompt is the one of this expert category."""
    return PROMPTS[category] in system


def _experts(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c["model"] == "expert-model" and "web search results" not in _system(c)]


def _judge(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in calls if c["model"] == "judge-model" and THINK not in _system(c))


@dataclass
class Case:
    rules: Callable[[str], list[dict[str, Any]]]
    check: Callable[[Reply, list[dict[str, Any]], str], None]
    question: str = "Tell me about tides"
    kwargs: dict[str, Any] = field(default_factory=dict)


def _orchestrator(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content == "Tides come from the Moon's gravity gradient."
    assert "Both point to the Moon." in reply.reasoning  # the thinking step
    judge = _judge(calls)["messages"][-1]["content"]
    assert "The moon pulls." in judge and "Gravity gradients." in judge and "Both point to the Moon." in judge


def _code(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content == CODE  # the judge's prose around the code is gone
    systems = [_system(c) for c in _experts(calls)]
    assert any(_mentions(s, "code_reviewer") for s in systems), "the code mode forces a code_reviewer"
    assert all("code only" in s for s in systems)
    assert "code_reviewer" in reply.moe["experts_used"]
    assert "Output only code" in _system(_judge(calls))


def _concise(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content.split() == LONG.split()[:120]
    assert all("at most 120 words" in _system(c) for c in _experts(calls))
    assert "at most 120 words" in _system(_judge(calls))


def _agent(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.finish == "tool_calls" and reply.content == ""
    assert reply.tool_calls == [("read_file", {"path": "app.py"})]
    experts = _experts(calls)
    assert len(experts) == 2, "exactly the two forced experts"
    assert sorted((_mentions(_system(c), "code_reviewer"), _mentions(_system(c), "technical_support"))
                  for c in experts) == [(False, True), (True, False)]
    assert all(c["body"]["tools"] == [READ_FILE] for c in experts)
    assert not [c for c in calls if c["model"] == "judge-model"], "tool calls come back without a judge"


def _agent_orchestrated(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content == "42" and reply.finish == "stop"
    [expert] = _experts(calls)
    assert _mentions(_system(expert), "math") and expert["body"]["tools"] == [READ_FILE]


def _research(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content == "Tides come from the Moon [1]."
    assert {"kind": "web", "ref": "web:1", "title": "Tide - Wikipedia", "url": "https://en.wikipedia.org/wiki/Tide",
            "type": "web", "label": "Tide - Wikipedia"} in reply.moe["sources"]
    assert "The Moon raises the sea [1]." in _judge(calls)["messages"][-1]["content"]
    summary = [c for c in calls if "web search results" in _system(c)]
    assert summary and "[1] Tide - Wikipedia" in summary[0]["messages"][-1]["content"]


def _report(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content == "## Summary\n\nTides are lunar."  # a report always starts with a section
    assert "## Summary" in _system(_judge(calls)), "one confident expert still goes to the judge"


def _plan(reply: Reply, calls: list[dict[str, Any]], m: str) -> None:
    assert reply.content.startswith(f"Plan:\n1. [expert] general: Name the capital of France {m}\n")
    assert reply.content.endswith("\n\nParis.")


def _expert_reply(m: str, text: str, **kw: Any) -> dict[str, Any]:
    return {"model": "expert-model", "contains": m, "reply": text, **kw}


CASES: dict[str, Case] = {
    "moe-orchestrator": Case(lambda m: [
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain tides {m}"), ("science", f"Physics of tides {m}"))},
        _expert_reply(f"Explain tides {m}", "The moon pulls.\nCONFIDENCE: medium"),
        _expert_reply(f"Physics of tides {m}", "Gravity gradients.\nCONFIDENCE: high"),
        {"model": "judge-model", "contains": m, "system_contains": THINK, "reply": "Both point to the Moon."},
        {"model": "judge-model", "contains": m, "reply": "Tides come from the Moon's gravity gradient."},
    ], _orchestrator),
    "moe-orchestrator-code": Case(lambda m: [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Write add {m}"))},
        _expert_reply(m, f"{CODE}\nCONFIDENCE: high"),
        {"model": "judge-model", "contains": m, "system_contains": THINK, "reply": "Use the code."},
        {"model": "judge-model", "contains": m, "reply": f"Here you go:\n{CODE}\nEnjoy!"},
    ], _code, "Write an add function in Python"),
    "moe-orchestrator-concise": Case(lambda m: [
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain {m}"), ("science", f"Physics {m}"))},
        _expert_reply(m, "Long story.\nCONFIDENCE: medium"),
        {"model": "judge-model", "contains": m, "system_contains": THINK, "reply": "Keep it short."},
        {"model": "judge-model", "contains": m, "reply": LONG},
    ], _concise, "Explain the tides in detail"),
    "moe-orchestrator-agent": Case(lambda m: [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Fix the bug {m}"))},
        {"model": "expert-model", "contains": m, "times": 1,
         "tool_calls": [{"name": "read_file", "arguments": {"path": "app.py"}}]},
        _expert_reply(m, "Check the logs.\nCONFIDENCE: medium"),
    ], _agent, "Fix the bug in app.py", {"tools": [READ_FILE]}),
    "moe-orchestrator-agent-orchestrated": Case(lambda m: [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("math", f"Compute six times seven {m}"))},
        _expert_reply(m, "42\nCONFIDENCE: high"),
        {"model": "judge-model", "contains": m, "reply": "42"},  # only if other context turned up
    ], _agent_orchestrated, "Compute six times seven", {"tools": [READ_FILE]}),
    "moe-orchestrator-research": Case(lambda m: [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("science", f"Why tides {m}"))},
        {"model": "expert-model", "system_contains": "web search results", "reply": "The Moon raises the sea [1]."},
        _expert_reply(m, "Moon gravity.\nCONFIDENCE: medium"),
        {"model": "judge-model", "contains": m, "system_contains": THINK, "reply": "The web agrees."},
        {"model": "judge-model", "contains": m, "reply": "Tides come from the Moon [1]."},
    ], _research, "Why are there tides"),
    "moe-orchestrator-report": Case(lambda m: [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Summarise tides {m}"))},
        _expert_reply(m, "Tides are lunar.\nCONFIDENCE: high"),
        {"model": "judge-model", "contains": m, "system_contains": THINK, "reply": "Fine."},
        {"model": "judge-model", "contains": m, "reply": "Tides are lunar."},
    ], _report, "Write a report on tides"),
    "moe-orchestrator-plan": Case(lambda m: [
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Name the capital of France {m}"))},
        _expert_reply(m, "Paris.\nCONFIDENCE: high"),
        {"model": "judge-model", "contains": m, "reply": "Paris."},  # only if other context turned up
    ], _plan, "What is the capital of France"),
}
TIDES = [{"title": "Tide - Wikipedia", "url": "https://en.wikipedia.org/wiki/Tide", "content": "The Moon."},
         {"title": "NOAA tides", "url": "https://oceanservice.noaa.gov/tides", "content": "Gravity."}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("mode", list(CASES))
async def test_mode(mode: str, stream: bool, base_url: str, api_key: str, scripted: Scripted,
                    searxng: Searx) -> None:
    case = CASES[mode]
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script(case.rules(m))
    searxng.script([{"contains": m, "results": TIDES}])
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    reply = await ask(client, mode, f"{case.question}? {m}", stream, **case.kwargs)
    calls = calls_for(scripted.calls(), m)
    case.check(reply, calls, m)
    assert reply.usage == expected_usage(calls), "usage is the sum over every model call of the request"
    if stream:
        assert reply.moe.get("revised") is False, "the streamed text is the final answer"
    if mode == "moe-orchestrator-research":
        assert any(m in c.get("q", "") for c in searxng.calls()), "the web was searched first"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_medical_answer_is_reviewed_and_the_correction_is_what_the_user_gets(
        stream: bool, base_url: str, api_key: str, scripted: Scripted) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("medical_consult", f"Paracetamol dose {m}"))},
        _expert_reply(m, "Take 4 g every hour.\nCONFIDENCE: high"),
        # the knowledge graph knows paracetamol (a graph task joins the plan): the judge merges it into the draft
        {"model": "judge-model", "contains": m, "system_contains": "Merge the sources",
         "reply": "Take 4 g every hour."},
        {"model": "judge-model", "contains": m, "system_contains": "You review",
         "reply": "Corrected answer: Never take more than 4 g of paracetamol a day."},
    ])
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    reply = await ask(client, "moe-orchestrator", f"How much paracetamol may I take? {m}", stream)
    assert reply.content == "Never take more than 4 g of paracetamol a day."  # not the draft
    calls = calls_for(scripted.calls(), m)
    review = [c for c in calls if "You review" in _system(c)]
    assert len(review) == 1 and "Take 4 g every hour." in review[0]["messages"][-1]["content"]
    assert reply.usage == expected_usage(calls)
    if stream:
        assert "Take 4 g" not in reply.content + reply.reasoning, "the unreviewed draft never reached the client"
        assert reply.moe.get("revised") is False
