"""Responses API input items -> internal messages (pure), and the response store's plain errors."""

from __future__ import annotations

import pytest

from gateway.protocols.responses.api import parse_responses_request
from gateway.protocols.responses.store import ResponseStore
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.stores import redis_client

pytestmark = pytest.mark.unit


def test_items_become_one_conversation() -> None:
    body = parse_responses_request({"model": "moe-orchestrator", "input": [
        {"role": "user", "content": "Weather?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}},
        {"type": "function_call_output", "call_id": "c1", "output": "3 C"},
    ]})
    messages = body.input_messages()
    assert [(m.role, m.content) for m in messages] == [("user", "Weather?"), ("assistant", "Checking."),
                                                       ("tool", "3 C")]
    # a call following the assistant's text joins that turn; object arguments are serialised
    assert messages[1].tool_calls == [{"id": "c1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]


@pytest.mark.parametrize(("item", "needle"), [
    ({"type": "function_call", "name": "f"}, "call_id"),
    ({"role": "tool", "content": "x"}, "role"),
    ({"type": "computer_call"}, "computer_call"),
    ({"role": "user", "content": 3}, "content"),
])
def test_bad_items_are_400(item: dict[str, object], needle: str) -> None:
    body = parse_responses_request({"model": "m", "input": [item]})
    with pytest.raises(OpenAIError) as err:
        body.input_messages()
    assert err.value.status == 400 and needle in err.value.message


async def test_an_unreachable_store_is_a_503_not_a_500() -> None:
    redis = redis_client("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(OpenAIError) as err:
            await ResponseStore(redis, "unit", 60).load("resp_x", "tenant")
    finally:
        await redis.aclose()
    assert (err.value.status, err.value.code) == (503, "store_unavailable")
