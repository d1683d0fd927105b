"""The mcp service as a real process on the real broker: ToolTask -> TaskResult over Kafka (idempotent,
dead letters), the REST API, and the MCP server called by the official SDK's client over streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from moe_core.contracts import TaskResult, ToolTask, Topics, deadline_in
from moe_core.contracts.tools import TOOL_SPECS
from moe_core.runtime.kafka_clients import client_kwargs
from tests.support.fleet import ServiceProcess, free_port
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
DISABLED = "graph_analyze"
TRACE_ID = uuid.uuid4().hex
TRACEPARENT = f"00-{TRACE_ID}-{'1' * 16}-01"
SERVICE_KEY = f"svc-{uuid.uuid4().hex}"  # /invoke and /mcp need a key (tests/infra/mcp_service/test_mcp_auth.py)
AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}


@pytest.fixture(scope="module")
def mcp(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    namespace = new_namespace("mcp")
    env = {**os.environ, "MOE_TOPIC_NAMESPACE": namespace, "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
           "MOE_REDIS_URL": infra["redis"], "MOE_TOOL_TIMEOUT_S": "3", "MOE_TOOLS_DISABLED": DISABLED,
           "MOE_MCP_SERVICE_KEY": SERVICE_KEY, "MOE_POSTGRES_DSN": infra["postgres"]}
    port = free_port()
    service = ServiceProcess("mcp", port, {**env, "MOE_HTTP_PORT": str(port)})
    service.start()
    try:
        service.wait_ready(timeout_s=300)  # SymPy preload; slow when the machine is busy
        yield service
    finally:
        service.stop()


def _task(rid: str, tool: str, args: dict[str, Any], task_id: str = "t1") -> ToolTask:
    return ToolTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id=task_id, tool=tool,
                    args=args, question="q")


async def _results(bootstrap: str, topic: str, rid: str, want: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap=bootstrap), auto_offset_reset="earliest",
                                group_id=None,
                                fetch_max_wait_ms=50)
    await consumer.start()
    found: list[Any] = []
    try:
        end = asyncio.get_running_loop().time() + timeout
        while len(found) < want and asyncio.get_running_loop().time() < end:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [r for r in records if r.key == rid.encode()]
    finally:
        await consumer.stop()
    return found


async def test_tool_task_becomes_an_exact_result_once(mcp: ServiceProcess, infra: dict[str, str]) -> None:
    topics = Topics.for_namespace(mcp.env["MOE_TOPIC_NAMESPACE"])
    rid = f"r{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]))
    await producer.start()
    try:
        task = _task(rid, "calculate", {"expression": "17% of 2340"}).model_dump_json().encode()
        failing = _task(rid, "calculate", {"expression": "1/0"}, task_id="t2").model_dump_json().encode()
        unknown = _task(rid, "teleport", {}, task_id="t3").model_dump_json().encode()
        for payload in (task, task, failing, unknown):  # the second copy is a redelivery
            await producer.send_and_wait(topics.tasks_mcp, payload, key=rid.encode(),
                                         headers=[("traceparent", TRACEPARENT.encode())])
        await producer.send_and_wait(topics.tasks_mcp, b'{"tool": "calculate"}', key=rid.encode())
    finally:
        await producer.stop()
    records = await _results(infra["kafka"], topics.results, rid, 4)
    results = [TaskResult.model_validate_json(r.value) for r in records]
    ok = [r for r in results if r.task_id == "t1"]
    when = {"trace", "created_at", "started_at"}  # when each copy ran differs; what it says must not
    assert len(ok) == 2 and ok[0].model_dump(exclude=when) == ok[1].model_dump(exclude=when)
    first = ok[0]
    assert all(TRACE_ID in dict(r.headers)["traceparent"].decode() for r in records), "the trace was not propagated"
    assert (first.content, first.confidence, first.kind, first.category) == (
        "17% of 2,340 = 397.8", "high", "tool", "precision")
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.model, first.error) == (0, 0, None, None)
    assert first.data is not None and first.data["result"]["result"] == "397.8"
    assert first.data["schema_sha256"] == TOOL_SPECS["calculate"].schema_sha256
    undefined = next(r for r in results if r.task_id == "t2")  # an input-caused failure is stated as the answer
    assert (undefined.content, undefined.confidence, undefined.error) == ("No exact result: division by zero.",
                                                                         "high", None)
    assert undefined.data is not None and undefined.data["error"]["code"] == "tool_execution_error"
    unanswered = next(r for r in results if r.task_id == "t3")  # no tool to answer: the task is unanswered
    assert unanswered.error == "unknown_tool: no tool named 'teleport' is enabled" and unanswered.content == ""
    letters = await _results(infra["kafka"], topics.deadletter, rid, 1)
    assert json.loads(letters[0].value)["error_type"] == "validation_error"


async def test_health_answers_like_the_seeds(mcp: ServiceProcess) -> None:
    """The seed's operators check `curl :8003/health` (status and tool list): open, no key needed."""
    async with httpx.AsyncClient(base_url=mcp.url, timeout=30) as http:
        response = await http.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["service"]) == ("ok", "mcp")
    assert set(body["tools"]) == set(TOOL_SPECS) - {DISABLED} and body["count"] == len(body["tools"])


async def test_rest_lists_contracts_and_invokes(mcp: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=mcp.url, timeout=30, headers=AUTH) as http:
        tools = {t["id"]: t for t in (await http.get("/tools")).json()["tools"]}
        assert set(tools) == set(TOOL_SPECS) - {DISABLED} and len(TOOL_SPECS) >= 30
        assert tools["unit_convert"]["schema_sha256"] == TOOL_SPECS["unit_convert"].schema_sha256
        ok = await http.post("/invoke", json={"tool": "unit_convert",
                                              "args": {"value": 100, "from_unit": "km/h", "to_unit": "m/s"}})
        assert ok.status_code == 200
        assert ok.json()["result"]["fraction"] == "250/9"
        cases = {
            (DISABLED, json.dumps({"edges": []})): (404, "unknown_tool"),
            ("calculate", json.dumps({"expression": "__import__('os')"})): (422, "wrong_arguments"),
            ("calculate", json.dumps({"expr": "1"})): (422, "wrong_arguments"),
            ("math", json.dumps({"operation": "expand", "expression": "(a+b+c+d+e)^300"})): (504, "timeout"),
            ("structured_validate", json.dumps({"format": "json", "text": "1", "schema": {"type": 3}})):
                (422, "input_schema_invalid"),
        }
        for (tool, args), (status, code) in cases.items():
            response = await http.post("/invoke", json={"tool": tool, "args": json.loads(args)})
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), tool
        bad = await http.post("/invoke", json={"args": {}})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
        after = await http.post("/invoke", json={"tool": "calculate", "args": {"expression": "2^10"}})
        assert after.json()["text"] == "2^10 = 1,024", "a killed worker must be replaced"
        chained = await http.post("/invoke", json={"tool": "chain", "args": {"steps": [
            {"tool": "base64_codec", "args": {"operation": "encode", "text": "abc"}},
            {"tool": "hash_text", "args": {"text": "$prev", "algorithm": "sha256"}}]}})
        assert chained.status_code == 200 and chained.json()["result"]["result"]["hex"] == \
            "35d95694d3f160215db293c7899daa5907837838fb4b8119ed713e32446c1266"
        out_of_range = await http.post("/invoke", json={"tool": "number_base", "args": {"value": "0b102"}})
        assert (out_of_range.status_code, out_of_range.json()["error"]) == (
            422, {"code": "wrong_arguments", "message": "'2' is not a digit in base 2"})


async def test_mcp_client_lists_and_calls_tools(mcp: ServiceProcess) -> None:
    transport = streamable_http_client(f"{mcp.url}/mcp", http_client=create_mcp_http_client(headers=AUTH))
    async with Client(transport) as client:
        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        assert names == set(TOOL_SPECS) - {DISABLED} and len(names) >= 30
        crc = await client.call_tool("checksum", {"text": "123456789", "algorithm": "crc32"})
        assert not crc.is_error and crc.structured_content is not None and crc.structured_content["hex"] == "cbf43926"
        date_diff = next(t for t in listed.tools if t.name == "date_diff")
        assert date_diff.input_schema == TOOL_SPECS["date_diff"].input_schema
        result = await client.call_tool("date_diff", {"start": "2024-02-01", "end": "2024-03-01"})
        assert not result.is_error
        assert result.structured_content is not None and result.structured_content["days"] == 29
        assert "29 days" in result.content[0].text  # type: ignore[union-attr]
        failed = await client.call_tool("roman_numeral", {"value": "IIII"})
        assert failed.is_error and failed.structured_content == {
            "error": {"code": "wrong_arguments", "message": "'IIII' is not a valid (canonical) Roman numeral"}}


async def test_text_that_is_not_unicode_is_400_at_both_http_doors(mcp: ServiceProcess) -> None:
    """A lone UTF-16 surrogate (escaped, reversed pair, CESU-8 bytes) never reaches a tool: REST names where it
    is; the MCP door's parser (the SDK's) refuses the JSON-RPC message as a Parse error."""
    async with httpx.AsyncClient(base_url=mcp.url, timeout=30, headers=AUTH) as http:
        cases = [(rb'{"tool": "hash_text", "args": {"text": "\ud800"}}', "args.text", "U+D800 at character 0"),
                 (rb'{"tool": "chain", "args": {"steps": [{"tool": "hash_text", "args": {"text": "ab\udc00\ud800"}}]}}',
                  "args.steps.0.args.text", "U+DC00 at character 2"),
                 (b'{"tool": "regex_replace", "args": {"text": "x\xed\xa0\x80", "pattern": "x", "replacement": "y"}}',
                  "args.text", "U+D800 at character 1"),
                 (rb'{"tool": "json_query", "args": {"json": {"\udfff": 1}, "path": "a"}}', "args.json", "U+DFFF")]
        for body, where, char in cases:
            response = await http.post("/invoke", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, response.text[:300]
            refused = response.json()
            assert refused["ok"] is False and refused["error"]["code"] == "invalid_text"
            assert refused["error"]["message"].startswith(f"{where}: ") and char in refused["error"]["message"]
        call = rb'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "hash_text", ' \
               rb'"arguments": {"text": "\ud800"}}}'
        response = await http.post("/mcp", content=call, headers={"Content-Type": "application/json",
                                                                   "Accept": "application/json, text/event-stream"})
        assert response.status_code == 400 and response.json()["error"]["code"] == -32700  # JSON-RPC Parse error


class _Recorder(BaseHTTPRequestHandler):
    """Serves a schema and records every request: a reference the tool must never fetch."""

    seen: list[str] = []
    body = b"{}"

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        return


async def test_a_schema_reference_to_a_file_or_url_is_refused_and_nothing_is_read(mcp: ServiceProcess,
                                                                                  tmp_path: Path) -> None:
    secret = f"SECRET-{uuid.uuid4().hex}"
    schema_file = tmp_path / "secret.schema.json"
    schema_file.write_text(json.dumps({"enum": [secret]}))
    _Recorder.body = schema_file.read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    remote = f"http://127.0.0.1:{server.server_address[1]}/schema.json"
    schemas = [{"$ref": schema_file.as_uri()}, {"$ref": remote},
               {"$id": f"{remote.rsplit('/', 1)[0]}/", "properties": {"a": {"$ref": "schema.json"}}}]
    transport = streamable_http_client(f"{mcp.url}/mcp", http_client=create_mcp_http_client(headers=AUTH))
    try:
        async with httpx.AsyncClient(base_url=mcp.url, timeout=30, headers=AUTH) as http, Client(transport) as client:
            for schema in schemas:
                args = {"format": "json", "text": '{"a": 1}', "schema": schema}
                response = await http.post("/invoke", json={"tool": "structured_validate", "args": args})
                assert (response.status_code, response.json()["error"]["code"]) == (422, "input_schema_invalid")
                assert "only references within the given schema" in response.json()["error"]["message"]
                assert secret not in response.text
                called = await client.call_tool("structured_validate", args)
                assert called.is_error and called.structured_content is not None
                assert called.structured_content["error"]["code"] == "input_schema_invalid"
                assert secret not in json.dumps(called.structured_content)
            local = {"$defs": {"s": {"enum": ["x"]}}, "properties": {"a": {"$ref": "#/$defs/s"}}}
            ok = await http.post("/invoke", json={"tool": "structured_validate",
                                                  "args": {"format": "json", "text": '{"a": 1}', "schema": local}})
            assert ok.status_code == 200 and ok.json()["result"]["errors"] == ["a: 1 is not one of ['x']"]
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.seen == [], "the tool fetched a schema reference"
