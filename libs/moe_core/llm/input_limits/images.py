"""Images in requests: OpenAI `image_url` parts and Anthropic `image` blocks (base64, data URLs; http(s) URLs
only from the hosts MOE_IMAGE_URL_HOSTS allows), checked against the limits
(moe_core.llm.input_limits.image_settings), stored once in Redis (moe_core.llm.images) and referenced from the
messages, for the `vision` expert.

Refused with 400 in the API's envelope: no configured server whose model takes images (`vision_models` in
INFERENCE_SERVERS), too many or too large images, bytes that are not an image of an accepted type, bad base64,
a remote URL that is not allowed or cannot be fetched."""

from __future__ import annotations

import base64
import binascii
import fnmatch
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from moe_core.contracts import ChatMessage, ImageRef
from moe_core.llm.images import ImageStore, image_ref, sniff
from moe_core.llm.inference import InferenceConfig
from moe_core.runtime.observability.metrics import GATEWAY_IMAGES
from moe_core.runtime.openai_error import OpenAIError

IMAGE_PARTS = ("image_url", "image")  # OpenAI content part, Anthropic content block


@dataclass
class ImageInput:
    """One image as the client sent it; `message`: its index in the request's internal messages."""

    where: str
    message: int = 0
    data: bytes | None = None
    declared: str | None = None
    url: str | None = None


class ImageLimits(Protocol):
    image_max_bytes: int
    image_max_count: int
    image_types: list[str]
    image_url_hosts: list[str]
    image_fetch_timeout_s: float
    image_ttl_s: int


def _bad(where: str, message: str, code: str = "invalid_image") -> OpenAIError:
    GATEWAY_IMAGES.labels(code).inc()
    return OpenAIError(400, f"{where}: {message}", param=where, code=code)


def _b64(text: Any, where: str) -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise _bad(where, "the image has no data")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(where, "the image data is not valid base64") from None


def from_url(url: Any, where: str) -> ImageInput:
    """A data URL (decoded here) or an http(s) URL (fetched later, if its host is allowed)."""
    if not isinstance(url, str) or not url:
        raise _bad(where, "an image needs a URL")
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise _bad(where, "a data URL image must be base64 (data:<type>;base64,<data>)")
        return ImageInput(where, data=_b64(payload, where), declared=header[5:].split(";")[0] or None)
    if urlsplit(url).scheme in ("http", "https"):
        return ImageInput(where, url=url)
    raise _bad(where, "an image must be a data URL, base64 data or an http(s) URL")


def openai_part(part: dict[str, Any], where: str) -> ImageInput:
    spec = part.get("image_url")
    return from_url(spec.get("url") if isinstance(spec, dict) else spec, f"{where}.image_url")


def anthropic_block(block: dict[str, Any], where: str) -> ImageInput:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        return ImageInput(f"{where}.source", data=_b64(source.get("data"), where),  # type: ignore[union-attr]
                          declared=source.get("media_type"))  # type: ignore[union-attr]
    if kind == "url":
        return from_url(source.get("url"), f"{where}.source")  # type: ignore[union-attr]
    raise _bad(where, f"an image source of type {kind!r} is not supported (base64 or url)")


class ImageIntake:
    """Checks, fetches and stores a request's images; the messages come back with their `ImageRef`s."""

    def __init__(self, limits: ImageLimits, config: InferenceConfig, store: ImageStore,
                 http: httpx.AsyncClient | None = None) -> None:
        self.limits = limits
        self.config = config
        self.store = store
        self.http = http or httpx.AsyncClient(follow_redirects=False)

    async def resolve(self, messages: list[ChatMessage], inputs: list[ImageInput]) -> list[ChatMessage]:
        if not inputs:
            return messages
        if not self.config.vision_refs():
            raise _bad("messages", "this request has an image, but no configured inference server has a model "
                                   "that accepts images (vision_models in INFERENCE_SERVERS)", "vision_unavailable")
        if len(inputs) > self.limits.image_max_count:
            raise _bad("messages", f"{len(inputs)} images: at most {self.limits.image_max_count} in one request "
                                   "(MOE_IMAGE_MAX_COUNT)", "too_many_images")
        images = [(item, await self._bytes(item)) for item in inputs]  # every image checked before any is stored
        refs = [(item, self._check(item, data)) for item, data in images]
        for (_, data), (_, ref) in zip(images, refs, strict=True):
            await self.store.put(ref, data, self.limits.image_ttl_s)
        out = list(messages)
        for item, ref in refs:
            target = out[item.message]
            out[item.message] = target.model_copy(update={"images": [*target.images, ref]})
        GATEWAY_IMAGES.labels("accepted").inc(len(refs))
        return out

    def _check(self, item: ImageInput, data: bytes) -> ImageRef:
        limit = self.limits.image_max_bytes
        if len(data) > limit:
            raise _bad(item.where, f"the image has {len(data)} bytes, at most {limit} (MOE_IMAGE_MAX_BYTES)",
                       "image_too_large")
        media_type = sniff(data)
        if media_type is None or media_type not in self.limits.image_types:
            found = media_type or f"not an image (declared {item.declared or 'nothing'})"
            raise _bad(item.where, f"unsupported image type: {found}; accepted: "
                                   f"{', '.join(self.limits.image_types)}", "unsupported_image_type")
        return image_ref(data, media_type)

    async def _bytes(self, item: ImageInput) -> bytes:
        if item.data is not None:
            return item.data
        url = item.url or ""
        host = urlsplit(url).hostname or ""
        if not any(fnmatch.fnmatch(host, pattern) for pattern in self.limits.image_url_hosts):
            raise _bad(item.where, f"remote image URLs are not allowed from {host or 'this host'} "
                                   "(MOE_IMAGE_URL_HOSTS); send the image as base64 or a data URL", "image_url_refused")
        return await self._fetch(item, url)

    async def _fetch(self, item: ImageInput, url: str) -> bytes:
        limit = self.limits.image_max_bytes
        try:
            async with self.http.stream("GET", url, timeout=self.limits.image_fetch_timeout_s) as response:
                if response.status_code != 200:
                    raise _bad(item.where, f"fetching the image answered HTTP {response.status_code}",
                               "image_fetch_failed")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise _bad(item.where, f"the image is larger than {limit} bytes (MOE_IMAGE_MAX_BYTES)",
                                   "image_too_large")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise _bad(item.where, f"the image could not be fetched: {type(exc).__name__}",
                       "image_fetch_failed") from None
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.http.aclose()
