"""Images for the vision expert: the task carries references (ImageRef), the bytes come from the gateway's
image store (moe_core.llm.images, Redis) and go to the model in the OpenAI multimodal form: the user turn becomes
a list of content parts, its text first, then one `image_url` part (a data URL) per image."""

from __future__ import annotations

from typing import Any

from moe_core.contracts import ExpertTask
from moe_core.llm.images import ImageStore, data_url


class ImageMissing(Exception):
    """An image of the task is no longer stored (it outlived MOE_IMAGE_TTL_S)."""


async def with_images(messages: list[dict[str, Any]], task: ExpertTask, store: ImageStore) -> list[dict[str, Any]]:
    """`messages` with the task's images added to its last (user) turn."""
    parts: list[dict[str, Any]] = []
    for ref in task.images:
        b64 = await store.get_b64(ref)
        if b64 is None:
            raise ImageMissing(f"image {ref.key[:12]} is no longer stored (the gateway keeps images for "
                               "MOE_IMAGE_TTL_S)")
        parts.append({"type": "image_url", "image_url": {"url": data_url(ref, b64)}})
    if not parts:
        return messages
    last = messages[-1]
    text = last.get("content") or ""
    return [*messages[:-1], {**last, "content": [{"type": "text", "text": text}, *parts]}]
