"""Images against real Redis: checked against the limits, fetched from allowed hosts (a real HTTP server),
stored once by reference, and read back by the vision expert in the OpenAI multimodal form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from expert_worker.vision import ImageMissing, with_images
from gateway.protocols.openai.api import ChatCompletionRequest
from gateway.settings import GatewaySettings
from moe_core.contracts import ExpertTask, deadline_in
from moe_core.llm.images import ImageStore, image_ref
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.inference.protocols import ollama_body
from moe_core.llm.input_limits.images import ImageInput, ImageIntake
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.settings import FleetSettings
from tests.support.images import b64, data_url, png, png_of_size

pytestmark = pytest.mark.infra
SERVERS = [{"name": "text", "url": "http://127.0.0.1:1", "models": ["small"]},
           {"name": "eyes", "url": "http://127.0.0.1:2", "models": ["llava", "small"], "vision_models": ["llava"]}]


def config(servers: list[dict[str, Any]]) -> InferenceConfig:
    return InferenceConfig.from_settings(FleetSettings(
        inference_servers=json.dumps(servers), expert_templates=json.dumps({"vision": ["llava"]})))


@pytest.fixture
def store(redis: Redis, namespace: str) -> ImageStore:
    return ImageStore(redis, namespace)


def intake(store: ImageStore, servers: list[dict[str, Any]] = SERVERS, **limits: Any) -> ImageIntake:
    return ImageIntake(GatewaySettings(**limits), config(servers), store)


def user_with(*items: ImageInput) -> tuple[list[Any], list[ImageInput]]:
    body = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "look"}]})
    return body.chat_messages(), list(items)


async def test_images_are_stored_once_and_referenced(store: ImageStore) -> None:
    image = png(seed=7)
    messages, inputs = user_with(ImageInput("a", data=image), ImageInput("b", data=image))
    out = await intake(store).resolve(messages, inputs)
    ref = image_ref(image, "image/png")
    assert out[0].images == [ref, ref]
    assert await store.get_b64(ref) == b64(image)
    assert await store.redis.ttl(store.key(ref)) > 0


@pytest.mark.parametrize(("item", "limits", "code"), [
    (ImageInput("m", data=png_of_size(5000)), {"image_max_bytes": 4096}, "image_too_large"),
    (ImageInput("m", data=b"%PDF-1.7 not an image", declared="image/png"), {}, "unsupported_image_type"),
    (ImageInput("m", data=b"GIF89a tiny"), {"image_types": ["image/png"]}, "unsupported_image_type"),
    (ImageInput("m", url="https://images.example.org/cat.png"), {}, "image_url_refused"),
    (ImageInput("m", url="https://elsewhere.example.org/cat.png"), {"image_url_hosts": ["images.example.org"]},
     "image_url_refused"),
])
async def test_limits_refuse_with_the_reason(store: ImageStore, item: ImageInput, limits: dict[str, Any],
                                             code: str) -> None:
    messages, inputs = user_with(item)
    with pytest.raises(OpenAIError) as caught:
        await intake(store, **limits).resolve(messages, inputs)
    assert (caught.value.status, caught.value.code) == (400, code)


async def test_without_a_server_that_takes_images_the_request_is_refused(store: ImageStore) -> None:
    messages, inputs = user_with(ImageInput("m", data=png()))
    with pytest.raises(OpenAIError, match="no configured inference server") as caught:
        await intake(store, [SERVERS[0]]).resolve(messages, inputs)
    assert caught.value.code == "vision_unavailable"
    too_many = [ImageInput("m", data=png(seed=i)) for i in range(3)]
    with pytest.raises(OpenAIError, match="at most 2"):
        await intake(store, image_max_count=2).resolve(messages, too_many)


async def test_the_vision_expert_gets_the_images_in_the_openai_multimodal_form(store: ImageStore) -> None:
    image = png(seed=3)
    ref = image_ref(image, "image/png")
    await store.put(ref, image, 60)
    task = ExpertTask(response_id="r", tenant_id="t", deadline_at=deadline_in(10), task_id="t1", category="vision",
                      instruction="what is this?", question="what is this?", images=[ref])
    messages = await with_images([{"role": "system", "content": "s"}, {"role": "user", "content": "what is this?"}],
                                 task, store)
    assert messages[-1]["content"] == [{"type": "text", "text": "what is this?"},
                                       {"type": "image_url", "image_url": {"url": data_url(image)}}]
    # Ollama servers get the same image as base64 in `images`
    ollama = ollama_body({"messages": messages}, "llava", False)["messages"][-1]
    assert ollama["content"] == "what is this?" and ollama["images"] == [b64(image)]
    await store.redis.delete(store.key(ref))
    with pytest.raises(ImageMissing, match="no longer stored"):
        await with_images([*messages[:1], {"role": "user", "content": "x"}], task, store)


@pytest.fixture(scope="module")
def image_host() -> Any:
    """A real HTTP server with images on 127.0.0.1 (an allowed host in the test below)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.support.scripted_llm import start_server_thread

    pictures = {"cat.png": png(8, 8, seed=5), "big.png": png_of_size(8000, seed=6)}

    async def picture(request: Any) -> Response:
        name = request.path_params["name"]
        if name not in pictures:
            return Response(status_code=404)
        return Response(pictures[name], media_type="image/png")

    url, stop = start_server_thread(app=Starlette(routes=[Route("/{name}", picture)]))
    yield url, pictures
    stop()


async def test_a_remote_image_from_an_allowed_host_is_fetched_and_limited(store: ImageStore, image_host: Any) -> None:
    url, pictures = image_host
    allowed = intake(store, image_url_hosts=["127.0.0.*"], image_max_bytes=4096)
    messages, inputs = user_with(ImageInput("m", url=f"{url}/cat.png"))
    out = await allowed.resolve(messages, inputs)
    assert out[0].images == [image_ref(pictures["cat.png"], "image/png")]
    for name, code in (("big.png", "image_too_large"), ("missing.png", "image_fetch_failed")):
        messages, inputs = user_with(ImageInput("m", url=f"{url}/{name}"))
        with pytest.raises(OpenAIError) as caught:
            await allowed.resolve(messages, inputs)
        assert caught.value.code == code, name
    await allowed.aclose()
