"""The edge's CPU per request for its protocol work alone, in CPU microseconds (no broker, no store, no network):

  python -m bench.edge_costs [N]

For each protocol, a typical agent request (a system prompt, three turns, one tool, a tool call and its result)
is parsed from its JSON body, validated into the protocol's request model, turned into the internal messages,
tools and parameters the chat flow publishes, and its Answer rendered as the protocol's JSON body: what the edge
does per request besides the bus and Redis. The whole gateway is imported first, as in its process (the cyclic
garbage collector's full passes cost more with more objects loaded). N rounds (2,000 by default) per
protocol; printed: the lowest and the median of 5 runs, per request.

For a before/after, run it with an older tree first on PYTHONPATH:
`git archive <rev> libs services/gateway | tar -x -C /tmp/before` and
`PYTHONPATH=.:/tmp/before/libs:/tmp/before/services/gateway python -m bench.edge_costs`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable

import gateway.app  # noqa: F401 (the gateway process's modules loaded, as in production: the garbage collector's work)
from gateway.protocols.anthropic.api import message_body, parse_messages_request
from gateway.protocols.openai.api import completion_body, parse_request
from gateway.protocols.responses.api import parse_responses_request, response_body
from moe_core.contracts import Answer, Usage, deadline_in

SYSTEM = "You are a careful assistant. Answer briefly and cite your sources."
SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
          "required": ["city"]}
OPENAI = json.dumps({
    "model": "moe-orchestrator", "max_tokens": 512, "temperature": 0.2, "stream": False,
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                "parameters": SCHEMA}}],
    "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the weather in Oslo, and should I take an umbrella?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "3 C, light rain"},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}]}).encode()
ANTHROPIC = json.dumps({
    "model": "claude-sonnet-4-6", "max_tokens": 512, "temperature": 0.2, "system": SYSTEM,
    "tools": [{"name": "get_weather", "description": "Weather of a city", "input_schema": SCHEMA}],
    "messages": [
        {"role": "user", "content": "What is the weather in Oslo, and should I take an umbrella?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                          {"type": "tool_use", "id": "t1", "name": "get_weather",
                                           "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "3 C, light rain"},
                                     {"type": "text", "text": "And tomorrow?"}]}]}).encode()
RESPONSES = json.dumps({
    "model": "moe-orchestrator", "instructions": SYSTEM, "max_output_tokens": 512, "temperature": 0.2,
    "tools": [{"type": "function", "name": "get_weather", "description": "Weather of a city", "parameters": SCHEMA}],
    "input": [
        {"role": "user", "content": "What is the weather in Oslo, and should I take an umbrella?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "3 C, light rain"},
        {"role": "user", "content": [{"type": "input_text", "text": "And tomorrow?"}]}]}).encode()
ANSWER = Answer(response_id="0" * 32, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                content="Tomorrow: 5 C and dry in Oslo; no umbrella needed.", reasoning="Looked at the forecast.",
                usage=Usage(prompt_tokens=120, completion_tokens=14))


def openai_request() -> None:
    body = parse_request(json.loads(OPENAI))
    body.chat_messages([]), body.params(), body.tool_defs(), body.chat_tool_choice()
    json.dumps(completion_body("chatcmpl-x", 0, "moe-orchestrator", ANSWER))


def anthropic_request() -> None:
    body = parse_messages_request(json.loads(ANTHROPIC))
    body.chat_messages([]), body.params(), body.tool_defs(), body.chat_tool_choice()
    json.dumps(message_body(body.model, ANSWER, True))


def responses_request() -> None:
    body = parse_responses_request(json.loads(RESPONSES))
    body.input_messages(), body.params(), body.tool_defs(), body.chat_tool_choice()
    json.dumps(response_body(body, ANSWER.response_id, 0, answer=ANSWER))


def per_request_us(work: Callable[[], None], rounds: int) -> list[float]:
    work()  # warm: imports, pydantic's first validation
    runs = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(rounds):
            work()
        runs.append((time.process_time() - started) / rounds * 1e6)
    return runs


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for name, work in (("openai", openai_request), ("anthropic", anthropic_request),
                       ("responses", responses_request)):
        runs = per_request_us(work, rounds)
        print(f"{name:10} {min(runs):7.1f} us/request lowest, {statistics.median(runs):7.1f} median ({rounds} x 5)")


if __name__ == "__main__":
    main()
