"""The model-client hook (moe_core.runtime.replay): a stage run's model calls recorded with their outputs, and a
replay as recorded answered from them — or refused, naming the stage, the task and why."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from moe_core.contracts import ExpertTask, ModelOutput, Plan, PlannedTask, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceError, InferenceServer, ModelRef
from moe_core.runtime.replay import digests, record, run_scope, take_outputs

pytestmark = pytest.mark.unit
SYSTEM = [{"role": "system", "content": "You are the planner."}, {"role": "user", "content": "Why tides?"}]
NOWHERE = InferenceServer(name="nowhere", url="http://127.0.0.1:9", models=["m"], max_retries=0, timeout_s=1)


def _task(**fields: Any) -> ExpertTask:
    return ExpertTask(response_id="r1", tenant_id="acme", deadline_at=deadline_in(60), task_id="t2",
                      category="general", instruction="Explain", question="Why tides?", **fields)


def _output(stage: str, task_id: str | None, messages: list[dict[str, Any]], content: str) -> ModelOutput:
    system, prompt = digests({"messages": messages})
    return ModelOutput(stage=stage, task_id=task_id, system=system, prompt=prompt, content=content, model="m",
                       server="s", prompt_tokens=3, completion_tokens=2)


def test_a_stage_runs_calls_are_kept_and_stamped_once() -> None:
    with run_scope("expert-worker", _task()):
        record({"messages": SYSTEM}, "The moon.", "stop", "m", "s", [], 3, 2)
        [kept] = take_outputs() or []
        assert take_outputs() is None  # each call on one message only
    assert (kept.stage, kept.task_id, kept.content, kept.replayed) == ("expert-worker", "t2", "The moon.", False)
    assert (kept.system, kept.prompt) == digests({"messages": SYSTEM})
    assert take_outputs() is None  # outside a stage run nothing is kept


def test_only_task_messages_name_a_task() -> None:
    plan = Plan(response_id="r1", tenant_id="acme", deadline_at=deadline_in(60), mode="m", question="q",
                tasks=[PlannedTask(task_id="t1", category="general", instruction="q")])
    with run_scope("merger", plan) as scope:
        assert scope.task_id is None and scope.recorded is None


async def test_a_replay_is_answered_from_the_record_without_a_model() -> None:
    client = InferenceClient(InferenceConfig(servers=[NOWHERE]))  # a call to it would fail
    recorded = [_output("planner", None, SYSTEM, '{"tasks": []}'), _output("expert-worker", "t2", SYSTEM, "Moon."),
                _output("expert-worker", "t2", SYSTEM, "Sun.")]  # the same call twice: answered in order
    try:
        with run_scope("expert-worker", _task(as_recorded=recorded)):
            done = await client.chat([ModelRef(model="m")], SYSTEM)
            streamed = [d async for d in client.stream([ModelRef(model="m")], SYSTEM)]
            [first, second] = take_outputs() or []
    finally:
        await client.aclose()
    assert (done.content, done.model, done.usage.total_tokens) == ("Moon.", "m", 5)
    assert "".join(d.content for d in streamed) == "Sun." and streamed[-1].done
    assert first.replayed and second.replayed


@pytest.mark.parametrize(("recorded_messages", "why"), [
    ([{"role": "system", "content": "You were the planner."}, SYSTEM[1]], "its system prompt differs from the recorded "
                                                                          "one (the prompt template changed"),
    ([SYSTEM[0], {"role": "user", "content": "Why waves?"}], "its prompt differs from the recorded one (same system "
                                                            "text, other input)"),
])
async def test_a_call_the_record_cannot_answer_fails_naming_stage_task_and_why(recorded_messages: list[Any],
                                                                               why: str) -> None:
    client = InferenceClient(InferenceConfig(servers=[NOWHERE]))
    try:
        with run_scope("expert-worker", _task(as_recorded=[_output("expert-worker", "t2", recorded_messages, "x")])):
            with pytest.raises(InferenceError) as failed:
                await client.chat([ModelRef(model="m")], SYSTEM)
            [kept] = take_outputs() or []
    finally:
        await client.aclose()
    assert failed.value.kind == "replay" and not failed.value.retryable
    assert f"replay as recorded: expert-worker task t2: {why}" in str(failed.value)
    assert kept.error is not None and kept.error.startswith("replay as recorded: expert-worker task t2")


async def test_a_call_of_another_task_or_a_second_call_is_not_answered() -> None:
    client = InferenceClient(InferenceConfig(servers=[NOWHERE]))
    try:
        with run_scope("expert-worker", _task(as_recorded=[_output("expert-worker", "t1", SYSTEM, "x")])):
            with pytest.raises(InferenceError, match="expert-worker task t2: the record holds no model call of it"):
                await client.chat([ModelRef(model="m")], SYSTEM)
        with run_scope("expert-worker", _task(as_recorded=[_output("expert-worker", "t2", SYSTEM, "x")])):
            await client.chat([ModelRef(model="m")], SYSTEM)
            with pytest.raises(InferenceError, match="holds 1 such call"):
                await client.chat([ModelRef(model="m")], SYSTEM)
    finally:
        await client.aclose()


async def test_a_call_that_failed_then_fails_the_same_way_in_the_replay() -> None:
    client = InferenceClient(InferenceConfig(servers=[NOWHERE]))  # nothing listens: the call fails
    try:
        with run_scope("expert-worker", _task()):
            with pytest.raises(InferenceError) as failed:
                await client.chat([ModelRef(model="m")], SYSTEM)
            [kept] = take_outputs() or []
        assert kept.failure is not None and kept.failure["kind"] == failed.value.kind and kept.content == ""
        assert kept.system == digests({"messages": SYSTEM})[0] and kept.replayed is False
        with run_scope("expert-worker", _task(as_recorded=[kept])):
            with pytest.raises(InferenceError) as replayed:
                await client.chat([ModelRef(model="m")], SYSTEM)
            [again] = take_outputs() or []
    finally:
        await client.aclose()
    assert str(replayed.value) == str(failed.value) and replayed.value.kind == failed.value.kind
    assert again.replayed and again.failure == kept.failure


@asynccontextmanager
async def _cut_stream(pieces: list[str]) -> AsyncIterator[tuple[str, list[str]]]:
    """An OpenAI-compatible server whose streamed answer breaks off: it sends `pieces` as chunks of an SSE stream,
    then closes the connection without ending it (a server crashing mid-answer). Yields its URL and the request
    lines it was sent."""
    asked: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        asked.append(head.split("\r\n")[0])
        length = next(int(v) for k, _, v in (ln.partition(":") for ln in head.split("\r\n"))
                      if k.lower() == "content-length")
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            event = f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n".encode()
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", asked
    finally:
        server.close()
        await server.wait_closed()


async def _drain(client: InferenceClient, into: list[str]) -> None:
    async for delta in client.stream([ModelRef(model="m")], SYSTEM):
        into.append(delta.content)


async def test_a_stream_that_failed_after_its_first_tokens_is_replayed_with_what_it_had_streamed() -> None:
    streamed: list[str] = []
    again: list[str] = []
    async with _cut_stream(["The moon ", "covers "]) as (url, asked):
        client = InferenceClient(InferenceConfig(servers=[InferenceServer(name="cut", url=url, models=["m"],
                                                                          max_retries=0, timeout_s=30)]))
        try:
            with run_scope("expert-worker", _task()):
                with pytest.raises(InferenceError) as failed:
                    await _drain(client, streamed)
                [kept] = take_outputs() or []
            with run_scope("expert-worker", _task(as_recorded=[kept])):
                with pytest.raises(InferenceError) as replayed:
                    await _drain(client, again)
                [answered] = take_outputs() or []
        finally:
            await client.aclose()
    assert "".join(streamed) == "The moon covers " and failed.value.kind == "connect"
    assert kept.content == "The moon covers " and kept.failure is not None and kept.failure["kind"] == "connect"
    assert (kept.server, kept.model, kept.replayed) == ("cut", "m", False)
    assert "".join(again) == "The moon covers " and str(replayed.value) == str(failed.value)
    assert answered.replayed and answered.failure == kept.failure
    assert asked == ["POST /v1/chat/completions HTTP/1.1"]  # the replay asked no server
