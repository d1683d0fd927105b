"""A chat completion and its stream's chunks as the gateway writes them, read into the official openai SDK's types
as the SDK reads a reply (`construct`), serialise without a pydantic warning: OpenAI types `metadata` as strings
only, so the fleet's own fields (lists, booleans, objects) ride in `moe`, which the SDK keeps in `model_extra`."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest
from openai import BaseModel as OpenAIModel
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.protocols.openai.api import completion_body
from gateway.protocols.openai.routes import OpenAIFrames
from gateway.session import RequestRun
from gateway.stream import sse
from moe_core.contracts import Answer, ChatMessage, ChatRequest, Source, deadline_in

pytestmark = pytest.mark.unit

def _request() -> ChatRequest:
    """A request whose deadline is ahead when the test runs (one made at import had passed in a long test run, and
    the stream ended with a deadline error instead of the answer)."""
    return ChatRequest(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="hi")], stream=True)


def _answer(request: ChatRequest) -> Answer:
    return Answer(**request.child_fields(), mode="moe-orchestrator", content="Paris.", experts_used=["general"],
                  sources=[Source(kind="expert", ref="general:expert-model@gpu1")], missing=["math"])


def _serialise_strictly(model: OpenAIModel) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.model_dump_json()
        return model.model_dump(mode="json")


def test_a_completion_has_the_fleets_fields_in_moe_and_serialises_without_a_warning() -> None:
    completion = ChatCompletion.construct(**completion_body("chatcmpl-r1", 0, "moe-orchestrator", _answer(_request())))
    dumped = _serialise_strictly(completion)
    assert completion.metadata is None and "metadata" not in completion.to_dict()
    fields = (completion.model_extra or {})["moe"]
    assert fields == dumped["moe"]
    assert fields["response_id"] == "r1" and fields["cache_hit"] is False and fields["missing"] == ["math"]
    assert fields["sources"] == [{"kind": "expert", "ref": "general:expert-model@gpu1", "type": "expert",
                                  "label": "general:expert-model@gpu1"}]


async def test_the_final_chunk_has_the_fleets_fields_in_moe_and_every_chunk_serialises_without_a_warning() -> None:
    request = _request()
    run = RequestRun(request, asyncio.Queue(), grace_s=0, keepalive_s=5, on_close=lambda r, why: None)
    run.queue.put_nowait(_answer(request))
    frames = [f async for f in sse(run, OpenAIFrames(run, "reasoning_content", include_usage=True))]
    chunks = [ChatCompletionChunk.construct(**json.loads(f.removeprefix("data: ")))
              for f in frames if f.startswith("data: {")]
    for chunk in chunks:
        _serialise_strictly(chunk)
    assert all("metadata" not in c.to_dict() for c in chunks)
    [final] = [c for c in chunks if (c.model_extra or {}).get("moe")]
    assert final.choices[0].finish_reason == "stop"
    assert (final.model_extra or {})["moe"]["revised"] is False
    assert (final.model_extra or {})["moe"]["experts_used"] == ["general"]
