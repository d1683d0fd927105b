"""Limits on the images a request may carry (moe_core.llm.input_limits.images); every value can be set as MOE_<NAME>."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"]


class ImageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    image_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="Largest image (decoded bytes): "
                                 "larger -> 400 image_too_large. The request body must fit MOE_MAX_BODY_BYTES too")
    image_max_count: int = Field(default=8, ge=0, description="Most images in one request: more -> 400")
    image_types: list[str] = Field(default_factory=lambda: list(IMAGE_TYPES), description="Image types accepted, "
                                   "as JSON; the type is read from the image's bytes: others -> 400")
    image_url_hosts: list[str] = Field(default_factory=list, description="Hosts (shell wildcards, JSON list) whose "
                                       "http(s) image URLs the gateway fetches; empty: remote images are refused")
    image_fetch_timeout_s: float = Field(default=10.0, gt=0, description="Fetching one remote image")
    image_ttl_s: int = Field(default=3600, ge=60, description="How long a request's images stay in Redis for the "
                             "vision expert (longer than the request's deadline and its redeliveries)")
