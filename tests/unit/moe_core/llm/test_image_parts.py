"""Images: parsed from both APIs' shapes, limited at the edge by their own rules, counted in token budgets as
what a vision encoder makes of them; which servers take images is configuration
(tests/infra/moe_core/llm/test_image_intake.py: the limits, the store and the vision expert's messages against real
Redis)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.protocols.anthropic.api import MessagesRequest
from gateway.protocols.openai.api import ChatCompletionRequest
from moe_core.contracts import deadline_in
from moe_core.llm.images import image_ref, sniff
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.input_limits.images import ImageInput
from moe_core.llm.input_limits.json_shape import image_payloads
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.settings import FleetSettings
from tests.support.images import b64, data_url, png, png_of_size

SERVERS = [{"name": "text", "url": "http://127.0.0.1:1", "models": ["small"]},
           {"name": "eyes", "url": "http://127.0.0.1:2", "models": ["llava", "small"], "vision_models": ["llava"]}]


def config(servers: list[dict[str, Any]] = SERVERS, templates: dict[str, Any] | None = None) -> InferenceConfig:
    return InferenceConfig.from_settings(FleetSettings(
        inference_servers=json.dumps(servers), expert_templates=json.dumps(templates or {"vision": ["llava"]})))


@pytest.mark.unit
def test_vision_models_are_pinned_to_the_servers_that_declare_them() -> None:
    assert [str(r) for r in config().vision_refs()] == ["llava@eyes"]
    # a template naming a text-only model: every model a server declares for images is used instead
    assert [str(r) for r in config(templates={"vision": ["small"]}).vision_refs()] == ["llava@eyes"]
    assert config([SERVERS[0]]).vision_refs() == []
    everything = [{**SERVERS[0], "vision_models": ["*"]}]
    assert [str(r) for r in config(everything, {"vision": ["small"]}).vision_refs()] == ["small@text"]


@pytest.mark.unit
def test_openai_and_anthropic_shapes_give_the_same_images() -> None:
    image = png()
    openai = ChatCompletionRequest.model_validate({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": data_url(image)}}]}]})
    found: list[ImageInput] = []
    messages = openai.chat_messages(found)
    assert messages[1].content == "what is this?" and found[0].data == image and found[0].message == 1
    anthropic = MessagesRequest.model_validate({"model": "m", "max_tokens": 10, "system": "be brief", "messages": [
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "done"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(image)}},
            {"type": "text", "text": "and this?"}]}]})
    found = []
    messages = anthropic.chat_messages(found)
    assert [m.role for m in messages] == ["system", "tool", "user"]
    assert found[0].data == image and found[0].message == 2 and messages[2].content == "and this?"
    with pytest.raises(OpenAIError, match="only text"):  # where images are not taken (e.g. another API)
        openai.chat_messages()


@pytest.mark.unit
@pytest.mark.parametrize(("part", "reason"), [
    ({"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}, "must be base64"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "not valid base64"),
    ({"type": "image_url", "image_url": {"url": "ftp://example.org/x.png"}}, "data URL, base64 data or an http"),
    ({"type": "image_url", "image_url": {}}, "needs a URL"),
])
def test_malformed_images_are_a_400_with_the_reason(part: dict[str, Any], reason: str) -> None:
    body = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    with pytest.raises(OpenAIError, match=reason) as caught:
        body.chat_messages([])
    assert caught.value.status == 400


@pytest.mark.unit
def test_sniffing_takes_the_type_from_the_bytes() -> None:
    assert sniff(png()) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"GIF89a...") == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"%PDF-1.7") is None


@pytest.mark.unit
def test_the_edge_leaves_image_data_to_the_image_limits() -> None:
    big = data_url(png_of_size(50_000))
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                      {"type": "image_url", "image_url": {"url": big}}]},
                         {"role": "user", "content": [{"type": "image", "source": {"data": "QUJD"}}]}]}
    assert image_payloads(body) == {"messages.0.content.1.image_url.url": len(big),
                                    "messages.1.content.0.source.data": 4}


@pytest.mark.unit
def test_an_image_counts_a_vision_encoders_tokens_in_a_budget_not_its_bytes() -> None:
    from moe_core.llm.token_budget import IMAGE_TOKENS, prompt_bound

    question = {"type": "text", "text": "what is this?"}
    image = {"type": "image_url", "image_url": {"url": data_url(png_of_size(10**6))}}
    text = [{"role": "user", "content": [question]}]
    with_image = [{"role": "user", "content": [question, image]}]
    assert prompt_bound(with_image) == prompt_bound(text) + IMAGE_TOKENS


@pytest.mark.unit
def test_a_requests_reservation_covers_its_images() -> None:
    from gateway.metering import estimate
    from moe_core.contracts import ChatMessage, ChatRequest
    from moe_core.llm.token_budget import IMAGE_TOKENS

    ref = image_ref(png(), "image/png")
    plain = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(10), mode="m",
                        messages=[ChatMessage(role="user", content="what is this?")])
    seen = plain.model_copy(update={"messages": [ChatMessage(role="user", content="what is this?", images=[ref] * 2)]})
    assert estimate(seen, 100)[0] == estimate(plain, 100)[0] + 2 * IMAGE_TOKENS
