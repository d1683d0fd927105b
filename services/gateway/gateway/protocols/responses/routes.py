"""The OpenAI Responses protocol: POST /v1/responses and GET /v1/responses/{id}. A request becomes a `response`
object or its typed SSE events, over the same chat flow as the other APIs (ChatService: validation, the key's
limits, publish, wait, cancel).

Stream (`event: <type>` + data with `sequence_number`): response.created, response.in_progress; live
progress and the merger's thinking as a `reasoning` item (reasoning_summary_part / _text events); answer
tokens as a `message` item (content_part.added, output_text.delta …, output_text.done, content_part.done);
function calls as `function_call` items (function_call_arguments.delta/.done); every item opened with
response.output_item.added and closed with response.output_item.done; then response.completed (or
response.failed with the error). Keep-alives are SSE comments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from gateway.deps import EdgeParts, VerifiedKey, json_body, request_timeout
from gateway.protocols.entry import Protocol, Resumed
from gateway.protocols.responses.api import (
    ResponsesRequest,
    assistant_turn,
    cut_short,
    function_call_items,
    message_item,
    parse_responses_request,
    reasoning_item,
    response_body,
)
from gateway.protocols.responses.store import ResponseStore, StoredResponse
from gateway.session import RequestRun
from gateway.stream import Frames, reply
from gateway.stream_ids import KEEP_ALIVE
from gateway.stream_registry import Api
from gateway.transcript import Done, Text
from moe_core.access.keystore import ApiKey
from moe_core.contracts import Answer, ChatMessage
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
router = APIRouter(tags=["responses"])
Finish = Callable[[dict[str, Any], Answer], Awaitable[None]]


@router.post("/v1/responses")
async def create_responses(request: Request, key: VerifiedKey, edge: EdgeParts) -> Response:
    """A response: resumed (Last-Event-ID) or parsed, run through the chat flow and stored."""
    if (resumed := await edge.resume.resume(request, key, "responses")) is not None:  # Last-Event-ID
        return resumed
    body = parse_responses_request(await json_body(request))
    earlier: list[ChatMessage] = []
    if body.previous_response_id:
        earlier = (await edge.responses.load(body.previous_response_id, key.default_tenant,
                                             "previous_response_id")).conversation
    turn = body.input_messages()
    system = [ChatMessage(role="system", content=body.instructions)] if body.instructions else []
    run = await edge.chat.open(body, system + earlier + turn, key.default_tenant, request, request_timeout(request),
                               messages_param="input")
    finish = finisher(edge.responses, body, key, earlier, turn)

    async def stored(answer: Answer) -> dict[str, Any]:
        response = response_body(body, run.request.response_id, _created(run), answer=answer)
        await finish(response, answer)
        return response

    return await reply(edge.chat, run, request, ResponsesFrames(run, body, finish),
                       {"body": body.model_dump(mode="json")}, stored)


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str, key: VerifiedKey, edge: EdgeParts) -> Response:
    record = await edge.responses.load(response_id, key.default_tenant)
    return JSONResponse(record.response)


def finisher(store: ResponseStore, body: ResponsesRequest, key: ApiKey, earlier: list[ChatMessage],
             turn: list[ChatMessage]) -> Finish:
    """What happens to a finished response: stored for GET and previous_response_id unless store=false."""
    async def finish(response: dict[str, Any], answer: Answer) -> None:
        if not body.store:
            return
        record = StoredResponse(tenant_id=key.default_tenant, key_id=key.id, response=response,
                                conversation=[*earlier, *turn, assistant_turn(answer)])
        try:
            await store.save(record)
        except RedisError:  # the answer still reaches the client; only its continuation is lost
            log.exception("could not store response %s", response["id"])
    return finish


def _created(run: RequestRun) -> int:
    return int(run.request.created_at.timestamp())


class ResponsesFrames:
    """One run as Responses API stream events, opening and closing output items as needed (gateway.stream)."""

    api: Api = "responses"

    def __init__(self, run: RequestRun, body: ResponsesRequest, finish: Finish) -> None:
        self.run, self.body, self.finish = run, body, finish
        self.rid = run.request.response_id
        self.seq = 0
        self.items: list[dict[str, Any]] = []  # finished output items
        self.open: str | None = None  # "reasoning" or "message"
        self.open_text = ""  # of the open item

    def _event(self, kind: str, **data: Any) -> str:
        payload = {"type": kind, **data, "sequence_number": self.seq}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_body(self.body, self.rid, _created(self.run), status=status, output=list(self.items), **extra)

    def opening(self) -> list[str]:
        return [self._event("response.created", response=self._response("in_progress")),
                self._event("response.in_progress", response=self._response("in_progress"))]

    def keepalive(self) -> str:
        return KEEP_ALIVE

    def _where(self) -> dict[str, Any]:
        item = reasoning_item(self.rid, "") if self.open == "reasoning" else message_item(self.rid, "")
        return {"item_id": item["id"], "output_index": len(self.items)}

    def _start(self, kind: str) -> list[str]:
        frames = self._close()
        self.open, self.open_text = kind, ""
        if kind == "reasoning":
            frames.append(self._event("response.output_item.added", output_index=len(self.items),
                                      item=reasoning_item(self.rid, "")))
            frames.append(self._event("response.reasoning_summary_part.added", **self._where(), summary_index=0,
                                      part={"type": "summary_text", "text": ""}))
        else:
            frames.append(self._event("response.output_item.added", output_index=len(self.items),
                                      item=message_item(self.rid, "", "in_progress")))
            frames.append(self._event("response.content_part.added", **self._where(), content_index=0,
                                      part={"type": "output_text", "text": "", "annotations": [], "logprobs": []}))
        return frames

    def _close(self, status: str = "completed") -> list[str]:
        """The open item's end; status: the message's (`incomplete`: the answer was cut at max_output_tokens)."""
        if self.open is None:
            return []
        where, text = self._where(), self.open_text
        if self.open == "reasoning":
            item = reasoning_item(self.rid, text)
            frames = [self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text),
                      self._event("response.reasoning_summary_part.done", **where, summary_index=0,
                                  part={"type": "summary_text", "text": text})]
        else:
            item = message_item(self.rid, text, status)
            frames = [self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                      self._event("response.content_part.done", **where, content_index=0,
                                  part=item["content"][0])]
        frames.append(self._event("response.output_item.done", output_index=len(self.items), item=item))
        self.items.append(item)
        self.open = None
        return frames

    def text(self, event: Text) -> list[str]:
        kind = "reasoning" if event.channel == "reasoning" else "message"
        frames = [] if self.open == kind else self._start(kind)
        self.open_text += event.text
        if kind == "reasoning":
            frames.append(self._event("response.reasoning_summary_text.delta", **self._where(), summary_index=0,
                                      delta=event.text))
        else:
            frames.append(self._event("response.output_text.delta", **self._where(), content_index=0,
                                      delta=event.text, logprobs=[]))
        return frames

    async def done(self, event: Done) -> list[str]:
        answer = event.answer
        frames = self._close("incomplete" if cut_short(answer) else "completed")
        for item in function_call_items(answer, self.body.custom_tools()):
            index = len(self.items)
            field, kind = ("input", "custom_tool_call_input") if item["type"] == "custom_tool_call" \
                else ("arguments", "function_call_arguments")
            frames.append(self._event("response.output_item.added", output_index=index,
                                      item={**item, field: "", "status": "in_progress"}))
            frames.append(self._event(f"response.{kind}.delta", item_id=item["id"], output_index=index,
                                      delta=item[field]))
            done = {"name": item["name"]} if field == "arguments" else {}
            frames.append(self._event(f"response.{kind}.done", item_id=item["id"], output_index=index,
                                      **done, **{field: item[field]}))
            frames.append(self._event("response.output_item.done", output_index=index, item=item))
            self.items.append(item)
        response = response_body(self.body, self.rid, _created(self.run), output=list(self.items), answer=answer)
        await self.finish(response, answer)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        frames.append(self._event(kind, response=response))
        return frames

    def failed(self, error: OpenAIError) -> list[str]:
        frames = self._close()
        frames.append(self._event("response.failed", response=self._response("failed", error=error)))
        return frames

    refused = failed


async def resumed(r: Resumed) -> Frames:
    body = ResponsesRequest.model_validate(r.spec["body"])
    earlier: list[ChatMessage] = []
    if body.previous_response_id:
        earlier = (await r.responses.load(body.previous_response_id, r.tenant_id)).conversation
    owner = replace(r.key, tenant_ids=(r.tenant_id,))  # stored under the tenant the stream was opened for
    return ResponsesFrames(r.run, body, finisher(r.responses, body, owner, earlier, body.input_messages()))


PROTOCOL = Protocol("responses", "/v1/responses", router, resumed=resumed)
