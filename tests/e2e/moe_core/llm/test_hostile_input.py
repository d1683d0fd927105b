"""Hostile input at the edge (moe_core.llm.input_limits.middleware), on a real gateway process: a 50 MB body, deep JSON
nesting, 100,000 messages, too many tools and stop sequences, an over-long string, a request whose fan-out
would not fit the broker, and text that is not Unicode (a lone UTF-16 surrogate in any string or key of any
route's body, raw or escaped; a body, a text header or a form charset that is not UTF-8): each a 400/413 in
the API's own envelope (OpenAI's, Anthropic's under /v1/messages), never a 500. The official SDKs where they
can send the input; raw HTTP where only raw bytes can (nesting, surrogates, a body larger than what any SDK
builds)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fleet import ServiceProcess, free_port, running
from tests.support.namespaces import new_namespace
from tests.support.split_routes import SplitTransport

pytestmark = pytest.mark.e2e
FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def http(bare_gateway: ServiceProcess, bare_control_plane: ServiceProcess, api_key: str) -> Iterator[httpx.Client]:
    """The protocol routes on the gateway, the others (feedback, admin, documents, …) on the control plane."""
    with httpx.Client(base_url=bare_gateway.url, headers={"Authorization": f"Bearer {api_key}"},
                      transport=SplitTransport(bare_control_plane.url), timeout=60) as client:
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



# -- text that is not Unicode --------------------------------------------------------------------------------
# Raw JSON: a lone surrogate can only be spelt as an escape (or as CESU-8 bytes); no SDK sends one.
LONE = (r'"\ud800"', "U+D800 at character 0")
REVERSED = (r'"pair \udc00\ud800"', "U+DC00 at character 5")  # a pair's halves swapped: two lone surrogates
TEXT_ROUTES = [  # every route that reads a JSON body: method, path, body (%s: the text), the path of the text
    ("POST", "/v1/chat/completions", '{"model": "moe-orchestrator", "messages": [{"role": "user", "content": %s}]}',
     "messages.0.content"),
    ("POST", "/v1/messages", '{"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", '
     '"content": [{"type": "text", "text": %s}]}]}', "messages.0.content.0.text"),
    ("POST", "/v1/messages/count_tokens", '{"model": "claude-sonnet-4-6", "messages": [{"role": "user", '
     '"content": %s}]}', "messages.0.content"),
    ("POST", "/v1/responses", '{"model": "moe-orchestrator", "input": %s}', "input"),
    ("POST", "/v1/feedback", '{"response_id": "chatcmpl-1", "rating": 2, "comment": %s}', "comment"),
    ("POST", "/v1/memory/ingest", '{"text": "Aspirin thins blood.", "question": %s}', "question"),
    ("POST", "/v1/memory/documents", '{"title": "t", "text": %s}', "text"),
    ("POST", "/v1/memory/search", '{"query": "q", "filters": {"domain": [%s]}}', "filters.domain.0"),
    ("POST", "/v1/knowledge/export", '{"entities": ["aspirin", %s]}', "entities.1"),
    ("POST", "/v1/knowledge/imports", '{"format": "moe-knowledge-bundle", "version": 1, "entities": '
     '[{"key": "k", "name": %s}], "relations": []}', "entities.0.name"),
    ("POST", "/v1/knowledge/imports/kcs-1/approve", '{"note": %s}', "note"),
    ("POST", "/graph/quarantine/q-1/reject", '{"note": %s}', "note"),
    ("POST", "/v1/admin/tenants", '{"id": "team-x", "name": %s}', "name"),
    ("PATCH", "/v1/admin/keys/key-1", '{"name": %s}', "name"),
]


def _refused_text(response: httpx.Response, path: str, param: str | None, char: str) -> str:
    """The text refusal in the route's own envelope; its message (which names `param` and the character)."""
    if path.startswith("/v1/messages"):
        message = _anthropic_error(response, 400, "invalid_request_error")
    else:
        error = _openai_error(response, 400, "invalid_text")
        assert error["param"] == param
        message = error["message"]
    assert message.startswith(f"{param}: ") and char in message and "lone UTF-16 surrogate" in message, message
    return message


@pytest.mark.parametrize("spelt", [LONE, REVERSED], ids=["lone", "reversed-pair"])
@pytest.mark.parametrize(("method", "path", "body", "param"), TEXT_ROUTES, ids=[r[1] for r in TEXT_ROUTES])
def test_a_lone_surrogate_in_any_route_s_text_is_its_400(http: httpx.Client, method: str, path: str, body: str,
                                                         param: str, spelt: tuple[str, str]) -> None:
    text, char = spelt
    response = http.request(method, path, content=(body % text).encode(),
                            headers={"Content-Type": "application/json"})
    _refused_text(response, path, param, char)


def test_a_surrogate_pair_in_order_is_text(http: httpx.Client) -> None:
    response = http.post("/v1/messages/count_tokens", content=rb'{"model": "claude-sonnet-4-6", "messages": '
                         rb'[{"role": "user", "content": "a smile \ud83d\ude00, in order"}]}')
    assert response.status_code == 200, response.text[:300]
    assert response.json()["input_tokens"] > 0


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", r'{"model": "moe-orchestrator", "messages": [{"role": "user", "content": "weather?"}, '
     r'{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": '
     r'{"name": "lookup", "arguments": "{\"city\": \"\ud800\"}"}}]}, {"role": "tool", "tool_call_id": "c1", '
     r'"content": "sunny"}]}', "messages.1.tool_calls.0.function.arguments"),
    ("/v1/messages", r'{"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": '
     r'"weather?"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": '
     r'{"city": "\ud800"}}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", '
     r'"content": "sunny"}]}]}', "messages.1.content.0.input.city"),
    ("/v1/chat/completions", r'{"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}], '
     r'"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", '
     r'"properties": {"city": {"type": "string", "description": "\udfff"}}}}}]}',
     "tools.0.function.parameters.properties.city.description"),
    ("/v1/messages", r'{"model": "claude-sonnet-4-6", "max_tokens": 10, "system": "You are \ud800 careful.", '
     r'"messages": [{"role": "user", "content": "hi"}]}', "system"),
    ("/v1/responses", r'{"model": "moe-orchestrator", "instructions": "Be \ud800 brief.", "input": "hi"}',
     "instructions"),
    ("/v1/chat/completions", r'{"model": "moe-orchestrator", "messages": [{"role": "system", "content": '
     r'"\udbff"}, {"role": "user", "content": "hi"}]}', "messages.0.content"),
])
def test_a_lone_surrogate_in_a_tool_argument_or_system_prompt_is_400(http: httpx.Client, path: str, body: str,
                                                                     param: str) -> None:
    _refused_text(http.post(path, content=body.encode()), path, param, "U+D")


def test_a_lone_surrogate_in_a_key_is_400_naming_its_object(http: httpx.Client) -> None:
    body = rb'{"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}], "metadata": {"\ud800": 1}}'
    message = _refused_text(http.post("/v1/chat/completions", content=body), "/v1/chat/completions", "metadata",
                            "U+D800")
    assert "a key holding" in message


def test_surrogate_bytes_and_bytes_that_are_not_utf8_are_400(http: httpx.Client) -> None:
    chat = b'{"model": "moe-orchestrator", "messages": [{"role": "user", "content": "%s"}]}'
    # ED A0 80: U+D800 in CESU-8/WTF-8 (Python's json keeps it as a lone surrogate)
    _refused_text(http.post("/v1/chat/completions", content=chat.replace(b"%s", b"caf\xed\xa0\x80")),
                  "/v1/chat/completions", "messages.0.content", "U+D800 at character 3")
    error = _openai_error(http.post("/v1/chat/completions", content=chat.replace(b"%s", b"caf\xe9")), 400,
                          "invalid_text")  # Latin-1
    assert "not UTF-8 text" in error["message"] and "0xE9" in error["message"]
    message = _anthropic_error(http.post("/v1/messages", content=b'{"model": "claude-sonnet-4-6", "max_tokens": 9, '
                                         b'"messages": [{"role": "user", "content": "\xff"}]}'),
                               400, "invalid_request_error")
    assert "not UTF-8 text" in message


def test_a_json_body_declared_as_a_form_is_still_checked(http: httpx.Client) -> None:
    """The model routes decode any body as JSON: a form's Content-Type must not carry text past the edge."""
    body = rb'{"model": "moe-orchestrator", "messages": [{"role": "user", "content": "\ud800"}]}'
    for declared in ("multipart/form-data; boundary=x", "application/x-www-form-urlencoded"):
        _refused_text(http.post("/v1/chat/completions", content=body, headers={"Content-Type": declared}),
                      "/v1/chat/completions", "messages.0.content", "U+D800")


@pytest.mark.parametrize("header", ["x-moe-tenant", "x-moe-template", "last-event-id", "x-request-timeout",
                                    "authorization"])
def test_a_text_header_that_is_not_utf8_is_400(http: httpx.Client, header: str) -> None:
    bad = {header: b"\xed\xa0\x80"}  # a lone surrogate as CESU-8 bytes: no UTF-8 decoder reads it
    ask = {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}]}
    error = _openai_error(http.post("/v1/chat/completions", json=ask, headers=bad), 400, "invalid_text")
    assert error["param"] == header and f"the {header} header is not UTF-8 text" in error["message"]
    _openai_error(http.post("/v1/responses", json={"model": "moe-orchestrator", "input": "hi"}, headers=bad), 400,
                  "invalid_text")
    _openai_error(http.get("/v1/models", headers=bad), 400, "invalid_text")
    message = _anthropic_error(http.post("/v1/messages", json={**ask, "max_tokens": 9}, headers=bad), 400,
                               "invalid_request_error")
    assert f"the {header} header is not UTF-8 text" in message


def test_a_header_the_gateway_does_not_read_may_be_latin1(http: httpx.Client) -> None:
    """A proxy's own header (a Latin-1 user name) does not make requests fail: only text headers are read."""
    response = http.post("/v1/messages/count_tokens", headers={"x-forwarded-user": b"M\xfcller"},
                         json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text[:300]


def test_a_form_in_a_charset_that_decodes_to_surrogates_is_400(http: httpx.Client) -> None:
    """Starlette decodes a multipart body in the charset its Content-Type names: UTF-7's "+2AA-" is U+D800."""
    upload = http.build_request("POST", "/v1/memory/documents", files={
        "file": ("notes+2AA-.txt", b"Ward 3 closes at 8.", "text/plain"), "title": (None, b"+2AA-")})
    content_type = upload.headers["content-type"]
    error = _openai_error(http.post("/v1/memory/documents", content=upload.read(),
                                    headers={"Content-Type": f"{content_type}; charset=utf-7"}), 400, "invalid_text")
    assert error["param"] == "Content-Type" and "utf-7" in error["message"]


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}],
                              "stream": "yes"}, "stream"),
    ("/v1/responses", {"model": "moe-orchestrator", "input": "hi", "store": "no"}, "store"),
    ("/v1/chat/completions", {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}],
                              "stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
])
def test_a_flag_that_is_not_a_boolean_is_400_not_read_as_one(http: httpx.Client, path: str, body: dict,
                                                             param: str) -> None:
    """"yes", "no" and 1 are not booleans: read loosely, "no" would mean false and "yes" a stream nobody asked for."""
    error = _openai_error(http.post(path, json=body), 400, "invalid_value")
    assert error["param"] == param and "valid boolean" in error["message"]


def test_an_anthropic_stream_flag_that_is_not_a_boolean_is_its_400(http: httpx.Client) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "stream": "yes",
            "messages": [{"role": "user", "content": "hi"}]}
    assert "valid boolean" in _anthropic_error(http.post("/v1/messages", json=body), 400, "invalid_request_error")


def test_a_validation_error_names_the_clients_field_not_pydantics_union_member(http: httpx.Client) -> None:
    error = _openai_error(http.post("/v1/responses", json={"model": "moe-orchestrator", "input": 5}), 400)
    assert error["param"] == "input" and error["code"] == "invalid_value"
    unknown = {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}],
               "tools": [{"type": "function", "function": {"name": "lookup"}}],
               "tool_choice": {"type": "function", "function": {"name": "other"}}}
    error = _openai_error(http.post("/v1/chat/completions", json=unknown), 400, "invalid_value")
    assert "'other'" in error["message"] and "Value error" not in error["message"]


_HI = {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}]}


_BIG_SCHEMA = {"type": "object", "properties": {f"field_{i}": {"type": "string", "description": "x" * 300}
                                                for i in range(120)}}  # > 32,768 characters as JSON


@pytest.mark.parametrize(("path", "body", "param", "words"), [
    ("/v1/chat/completions", {**_HI, "response_format": {"type": "xml"}}, "response_format", "json_schema, got 'xml'"),
    ("/v1/chat/completions", {**_HI, "response_format": {"type": "json_schema"}}, "response_format.json_schema",
     "is required"),
    ("/v1/chat/completions", {**_HI, "response_format": {"type": "json_schema", "json_schema": {
        "name": "city", "schema": ["not", "an", "object"]}}}, "response_format.json_schema.schema", "JSON Schema"),
    ("/v1/chat/completions", {**_HI, "response_format": {"type": "json_schema", "json_schema": {
        "name": "city", "schema": {"type": "nothing"}}}}, "response_format.json_schema.schema", "not a valid"),
    ("/v1/chat/completions", {**_HI, "response_format": {"type": "json_schema", "json_schema": {
        "name": "a city!", "schema": {"type": "object"}}}}, "response_format.json_schema.name", "must match"),
    ("/v1/chat/completions", {**_HI, "response_format": {"type": "json_schema", "json_schema": {
        "name": "city", "schema": _BIG_SCHEMA}}}, "response_format.json_schema.schema", "too large"),
    ("/v1/chat/completions", {**_HI, "logprobs": True}, "logprobs", "logprobs"),
    ("/v1/chat/completions", {**_HI, "top_logprobs": 2}, "top_logprobs", "logprobs"),
    ("/v1/responses", {"model": "moe-orchestrator", "input": "hi", "text": {"format": {"type": "yaml"}}},
     "text.format", "json_schema, got 'yaml'"),
    ("/v1/responses", {"model": "moe-orchestrator", "input": "hi", "text": {"format": {
        "type": "json_schema", "name": "x" * 65, "schema": {"type": "object"}}}}, "text.format.name", "must match"),
    ("/v1/responses", {"model": "moe-orchestrator", "input": "hi", "text": {"format": {
        "type": "json_schema", "name": "city", "schema": "object"}}}, "text.format.schema", "JSON Schema"),
])
def test_a_bad_response_format_and_logprobs_are_refused_naming_the_param(http: httpx.Client, path: str, body: dict,
                                                                        param: str, words: str) -> None:
    """A format the fleet cannot hold an answer to (an unknown type, a schema that is no JSON Schema object, a name
    the models' APIs refuse, a schema too large) is a 400 naming the field, before anything enters the fleet; so are
    logprobs, which it cannot give (a new user got logprobs null without a word). A text format, logprobs false and
    top_logprobs 0 are what it does anyway."""
    error = _openai_error(http.post(path, json=body), 400, "invalid_value")
    assert error["param"] == param and words in error["message"], error


def test_text_past_the_prompt_limit_is_400_naming_the_limit_and_its_setting(http: httpx.Client) -> None:
    body = {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "word " * 50_000}]}  # 250,000
    error = _openai_error(http.post("/v1/chat/completions", json=body), 400, "context_length_exceeded")
    assert "200000 characters" in error["message"] and "MOE_MAX_PROMPT_CHARS" in error["message"]


def test_an_anthropic_server_tool_is_refused_as_one(http: httpx.Client) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    message = _anthropic_error(http.post("/v1/messages", json=body), 400, "invalid_request_error")
    assert "server tools (web_search_20250305) are not supported" in message and "input_schema: Field" not in message


def test_a_system_message_alone_is_a_400_with_its_code(http: httpx.Client) -> None:
    body = {"model": "moe-orchestrator", "messages": [{"role": "system", "content": "be brief"}]}
    error = _openai_error(http.post("/v1/chat/completions", json=body), 400, "invalid_value")
    assert error["param"] == "messages"


@pytest.fixture
def admin_http(bare_control_plane: ServiceProcess, admin_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bare_control_plane.url, headers={"Authorization": f"Bearer {admin_key}"},
                      timeout=60) as client:
        yield client


def test_an_admin_body_without_a_json_content_type_says_which_header_to_send(admin_http: httpx.Client) -> None:
    """curl -d sends application/x-www-form-urlencoded: the admin API reads JSON only (and a browser's form cannot
    post to it), so the error says what to send."""
    raw = b'{"id": "team-a"}'
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    error = _openai_error(admin_http.post("/v1/admin/tenants", content=raw, headers=form), 400, "invalid_value")
    assert "Content-Type: application/json" in error["message"]
    error = _openai_error(admin_http.post("/v1/admin/tenants", content=b"{nope",
                                    headers={"Content-Type": "application/json"}), 400, "invalid_value")
    assert error["param"] is None and error["message"] == "the request body is not valid JSON"


def test_a_key_update_neither_reads_yes_as_true_nor_sets_and_clears_at_once(admin_http: httpx.Client) -> None:
    http = admin_http
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert http.post("/v1/admin/tenants", json={"id": tenant}).status_code == 201
    key = http.post("/v1/admin/keys", json={"name": "k", "tenant_ids": [tenant], "expires_in_days": 1}).json()
    loose = _openai_error(http.patch(f"/v1/admin/keys/{key['id']}", json={"clear_expiry": "yes"}), 400, "invalid_value")
    assert loose["param"] == "clear_expiry"
    both = _openai_error(http.patch(f"/v1/admin/keys/{key['id']}", json={
        "allowed_models": ["moe-orchestrator"], "clear_allowed_models": True}), 400, "invalid_value")
    assert "allowed_models or clear_allowed_models" in both["message"]
    far = _openai_error(http.post("/v1/admin/keys", json={"name": "k", "tenant_ids": [tenant],
                                                          "expires_at": "9999-12-31T23:59:59Z"}), 400, "invalid_value")
    assert "3660 days" in far["message"]
    assert http.get(f"/v1/admin/keys/{key['id']}").json()["expires_at"] == key["expires_at"]  # unchanged


def _errors_counted(gateway: ServiceProcess, endpoint: str, status: str) -> float:
    wanted = {"endpoint": endpoint, "mode": "-", "status": status}
    text = httpx.get(f"{gateway.url}/metrics", timeout=30).text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "moe_gateway_requests_total" and s.labels == wanted)


def test_a_refused_request_is_counted_under_its_own_endpoint(http: httpx.Client, bare_gateway: ServiceProcess) -> None:
    """Errors before the chat flow were all counted as endpoint "api": the chat API's 4xx/5xx could not be told from
    the Responses API's on the dashboard."""
    before = {e: _errors_counted(bare_gateway, e, "400") for e in ("chat", "responses")}
    _openai_error(http.post("/v1/responses", json={"model": "moe-orchestrator", "input": 5}), 400)
    _openai_error(http.post("/v1/responses", json={"model": "moe-orchestrator", "input": 5}), 400)
    _openai_error(http.post("/v1/chat/completions", json={"model": "moe-orchestrator", "messages": 5}), 400)
    assert _errors_counted(bare_gateway, "responses", "400") == before["responses"] + 2
    assert _errors_counted(bare_gateway, "chat", "400") == before["chat"] + 1
