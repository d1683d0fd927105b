"""Hostile input at the gateway's edge (gateway.edge), on a real gateway process: a 50 MB body, deep JSON
nesting, 100,000 messages, too many tools and stop sequences, an over-long string, and a request whose
fan-out would not fit the broker: each a 400/413 in the API's own envelope (OpenAI's, Anthropic's under
/v1/messages), never a 500. The official SDKs where they can send the input; raw HTTP where only raw
bytes can (nesting, a body larger than what any SDK builds)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.support.fleet import ServiceProcess, free_port, running
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e
FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def http(bare_gateway: ServiceProcess, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bare_gateway.url, headers={"Authorization": f"Bearer {api_key}"},
                      timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def trusting_gateway(bare_gateway: ServiceProcess) -> Iterator[ServiceProcess]:
    """A gateway whose edge estimate lets through more than the broker takes (a misconfiguration)."""
    port = free_port()
    env = {**bare_gateway.env, "MOE_HTTP_PORT": str(port), "MOE_TOPIC_NAMESPACE": new_namespace("gw"),
           "MOE_FANOUT_COPIES": "1", "MOE_BROKER_MAX_MESSAGE_BYTES": str(8 * 1024 * 1024),
           "MOE_MAX_PROMPT_CHARS": "5000000"}
    with running(ServiceProcess("gateway", port, env)) as gateway:
        yield gateway


def _openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def _anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    return body["error"]["message"]


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    yield b'{"model": "moe-orchestrator", "messages": [{"role": "user", "content": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}]}'


def test_a_50_mb_body_is_413_with_or_without_its_length(http: httpx.Client) -> None:
    body = b"".join(_chunks(FIFTY_MB))
    error = _openai_error(http.post("/v1/chat/completions", content=body,
                                    headers={"Content-Type": "application/json"}), 413, "request_too_large")
    assert "MOE_MAX_BODY_BYTES" in error["message"]
    # Chunked, no Content-Length: counted while it is read, refused once it passes the limit.
    _openai_error(http.post("/v1/responses", content=_chunks(FIFTY_MB),
                            headers={"Content-Type": "application/json"}), 413, "request_too_large")
    message = _anthropic_error(http.post("/v1/messages", content=body), 413, "request_too_large")
    assert "MOE_MAX_BODY_BYTES" in message


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/responses", "/v1/feedback", "/v1/admin/keys"])
def test_deep_nesting_is_400_not_500(http: httpx.Client, route: str) -> None:
    deep = b'{"model": "moe-orchestrator", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    error = _openai_error(http.post(route, content=deep), 400, "json_too_deep")
    assert "MOE_MAX_JSON_DEPTH" in error["message"]


def test_deep_nesting_in_the_anthropic_api_is_its_400(http: httpx.Client) -> None:
    deep = b'{"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    _anthropic_error(http.post("/v1/messages", content=deep), 400, "invalid_request_error")
    _anthropic_error(http.post("/v1/messages/count_tokens", content=deep), 400, "invalid_request_error")


def test_brackets_inside_strings_are_text_not_nesting(http: httpx.Client) -> None:
    text = "[[[{{{" * 200 + '\\" ]]] \\\\'
    response = http.post("/v1/messages/count_tokens", json={
        "model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": text}]})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["input_tokens"] > 0


def test_100000_messages_through_the_openai_sdk_is_413(bare_gateway: ServiceProcess, api_key: str) -> None:
    client = openai.OpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(  # extra_body: sent as is (the SDK's per-message transform is slow)
            model="moe-orchestrator", messages=[],
            extra_body={"messages": [{"role": "user", "content": "hi"}] * 100_000})
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"  # type: ignore[index]
    assert "MOE_BROKER_MAX_MESSAGE_BYTES" in caught.value.body["message"]  # type: ignore[index]


def test_too_many_short_messages_is_413_naming_the_limit(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "x"}] * 5000  # small enough for the bus, too many for the limit
    error = _openai_error(http.post("/v1/chat/completions", json={"model": "moe-orchestrator",
                                                                  "messages": messages}), 413, "too_many_messages")
    assert error["param"] == "messages" and "MOE_MAX_MESSAGES" in error["message"]


def test_too_many_tools_and_stop_sequences_are_400(http: httpx.Client) -> None:
    ask = [{"role": "user", "content": "hi"}]
    tools = [{"type": "function", "function": {"name": f"t{i}", "parameters": {"type": "object"}}}
             for i in range(200)]
    error = _openai_error(http.post("/v1/chat/completions", json={"model": "moe-orchestrator", "messages": ask,
                                                                  "tools": tools}), 400)
    assert error["param"] == "tools" and "MOE_MAX_TOOLS" in error["message"]
    error = _openai_error(http.post("/v1/chat/completions", json={"model": "moe-orchestrator", "messages": ask,
                                                                  "stop": [f"s{i}" for i in range(40)]}), 400)
    assert error["param"] == "stop"
    message = _anthropic_error(http.post("/v1/messages", json={
        "model": "claude-sonnet-4-6", "max_tokens": 10, "messages": ask,
        "stop_sequences": [f"s{i}" for i in range(40)]}), 400, "invalid_request_error")
    assert "MOE_MAX_STOP" in message


def test_an_over_long_string_anywhere_is_400_with_its_path(http: httpx.Client) -> None:
    long = "y" * 1_000_001
    error = _openai_error(http.post("/v1/feedback", json={"response_id": "r", "rating": 1, "comment": long}), 400)
    assert error["param"] == "comment" and "MOE_MAX_STRING_CHARS" in error["message"]


def test_a_request_whose_fan_out_exceeds_the_broker_is_413_through_the_anthropic_sdk(
        bare_gateway: ServiceProcess, api_key: str) -> None:
    client = anthropic.Anthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=60)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10,
                               messages=[{"role": "user", "content": "z" * 600_000}])
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_a_request_under_every_limit_reaches_its_route(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": f"message {i}"} for i in range(3000)]
    response = http.post("/v1/messages/count_tokens", json={"model": "claude-sonnet-4-6", "messages": messages})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["input_tokens"] > 3000


def test_a_request_the_broker_refuses_is_413_even_past_the_edge(trusting_gateway: ServiceProcess,
                                                                   api_key: str) -> None:
    client = openai.OpenAI(base_url=f"{trusting_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="moe-orchestrator",
                                       messages=[{"role": "user", "content": "w" * 400_000}] * 3)
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"  # type: ignore[index]
    assert "larger than the fleet's bus carries" in caught.value.body["message"]  # type: ignore[index]
