"""Images through both official SDKs: they reach the vision expert's model (the scripted server records the
OpenAI multimodal request), carried once beside the bus whatever their size; no server that takes images,
a too large image or one of an unsupported type is a 400 that says so."""

from __future__ import annotations

import uuid

import anthropic
import openai
import pytest

from moe_core.contracts import Topics
from tests.conftest import FLEET_MODEL, Scripted
from tests.support.fleet import Fleet, ServiceProcess
from tests.support.images import b64, data_url, png, png_of_size
from tests.support.moe_fields import moe
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e
VISION_REPLY = "CORE_FINDING: a square of coloured noise\nDETAILS: random pixels\nCONFIDENCE: high"


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=90)


@pytest.fixture
def claude(fleet: Fleet, api_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fleet["gateway"].url, api_key=api_key, max_retries=0, timeout=90)


def vision_calls(scripted: Scripted, marker: str) -> list[dict]:
    return [c for c in scripted.calls(FLEET_MODEL) if marker in str(c["messages"][-1]["content"])]


def image_parts(call: dict) -> list[dict]:
    content = call["messages"][-1]["content"]
    assert isinstance(content, list), content  # the OpenAI multimodal form
    assert content[0]["type"] == "text"
    return [p for p in content if p["type"] == "image_url"]


async def test_an_openai_image_reaches_the_vision_expert_and_is_carried_once(
        client: openai.OpenAI, scripted: Scripted, fleet: Fleet, infra: dict[str, str]) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([{"model": FLEET_MODEL, "contains": m, "reply": VISION_REPLY}])
    image = png_of_size(1_500_000, seed=1)  # larger than the broker takes in one message (1 MiB)
    response = client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": [
        {"type": "text", "text": f"What is in this picture? {m}"},
        {"type": "image_url", "image_url": {"url": data_url(image)}}]}])
    assert "coloured noise" in (response.choices[0].message.content or "")
    assert moe(response)["experts_used"] == ["vision"]
    calls = vision_calls(scripted, m)
    assert len(calls) == 1
    assert image_parts(calls[0]) == [{"type": "image_url", "image_url": {"url": data_url(image)}}]
    rid = response.id.removeprefix("chatcmpl-")
    topics = Topics.for_namespace(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"])
    async with TopicReader(infra["kafka"], topics.requests, topics.tasks_expert) as reader:
        request = (await reader.wait(topics.requests, lambda b: b["response_id"] == rid))[0]
        task = (await reader.wait(topics.tasks_expert, lambda b: b["response_id"] == rid))[0]
    ref = request["messages"][-1]["images"][0]
    assert (ref["media_type"], ref["size"]) == ("image/png", len(image))
    assert task["category"] == "vision" and task["images"] == [ref]
    assert b64(image) not in str(request) and b64(image) not in str(task)  # by reference, not by value


def test_an_anthropic_image_block_reaches_the_vision_expert(claude: anthropic.Anthropic, scripted: Scripted) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([{"model": FLEET_MODEL, "contains": m, "reply": VISION_REPLY}])
    image = png(16, 16, seed=2)
    message = claude.messages.create(model="moe-orchestrator", max_tokens=200, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(image)}},
        {"type": "text", "text": f"Describe it. {m}"}]}])
    assert "coloured noise" in "".join(b.text for b in message.content if b.type == "text")
    calls = vision_calls(scripted, m)
    assert len(calls) == 1 and image_parts(calls[0])[0]["image_url"]["url"] == data_url(image)


def test_too_large_or_not_an_image_is_a_400_with_the_reason(client: openai.OpenAI, claude: anthropic.Anthropic,
                                                             scripted: Scripted) -> None:
    scripted.script([])
    too_large = png_of_size(4 * 1024 * 1024 + 1)  # MOE_IMAGE_MAX_BYTES: 4 MiB
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": data_url(too_large)}}]}])
    assert caught.value.code == "image_too_large" and "MOE_IMAGE_MAX_BYTES" in caught.value.message
    pdf = b"%PDF-1.7\n" + bytes(200)
    with pytest.raises(anthropic.BadRequestError, match="unsupported image type"):
        claude.messages.create(model="moe-orchestrator", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(pdf)}},
            {"type": "text", "text": "look"}]}])
    with pytest.raises(openai.BadRequestError, match="remote image URLs are not allowed"):
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://images.example.org/cat.png"}}]}])
    assert scripted.calls() == []  # nothing reached a model


def test_without_a_server_that_takes_images_it_is_a_400_that_says_so(bare_gateway: ServiceProcess,
                                                                       api_key: str) -> None:
    """This gateway's configuration (the embedded local model) declares no model that takes images."""
    gpt = openai.OpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": data_url(png())}}]}])
    assert caught.value.code == "vision_unavailable"
    assert "no configured inference server has a model that accepts images" in caught.value.message
    claude = anthropic.Anthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=30)
    with pytest.raises(anthropic.BadRequestError, match="accepts images"):
        claude.messages.create(model="moe-orchestrator", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(png())}}]}])
