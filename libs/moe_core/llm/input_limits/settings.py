"""Limits on what the edge and the control plane accept (moe_core.llm.input_limits.middleware); each is MOE_<NAME>."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.llm.input_limits.image_settings import ImageSettings


class EdgeSettings(ImageSettings):  # the images' own limits (.images) replace the string limit for them
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Largest request body (bytes), "
                                "counted while it is read: larger -> 413 before anything is parsed")
    max_json_depth: int = Field(default=64, ge=2, le=1000, description="Deepest JSON nesting of a body "
                                "(objects and arrays), checked before it is decoded: deeper -> 400")
    max_messages: int = Field(default=4096, ge=1, description="Most messages (or Responses input items) "
                              "in one request: more -> 413")
    max_tools: int = Field(default=128, ge=0, description="Most tool definitions in one request: more -> 400")
    max_stop: int = Field(default=16, ge=0, description="Most stop sequences in one request: more -> 400")
    max_string_chars: int = Field(default=1_000_000, ge=1, description="Longest string anywhere in a JSON "
                                  "body (characters): longer -> 400")
    max_array_items: int = Field(default=10_000, ge=1, description="Longest array anywhere in a JSON body "
                                 "(other than messages): longer -> 400")
    broker_max_message_bytes: int = Field(default=1_048_576, ge=1024, description="What the broker (and "
                                          "aiokafka's producer, max_request_size) accepts in one message")
    fanout_copies: int = Field(default=3, ge=1, description="How many times the request's conversation is "
                               "carried in the largest message it causes (an expert task: question, "
                               "history, instruction): body x this over the broker's limit -> 413")
