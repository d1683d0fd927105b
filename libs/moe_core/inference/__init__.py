"""Calls inference servers (OpenAI-compatible or Ollama) chosen by configuration."""

from moe_core.inference.client import Completion, InferenceClient, StreamDelta
from moe_core.inference.config import InferenceConfig, InferenceServer, ModelRef
from moe_core.inference.errors import InferenceError
from moe_core.inference.fleet import InferenceFleet

__all__ = [
    "Completion",
    "InferenceClient",
    "InferenceConfig",
    "InferenceError",
    "InferenceFleet",
    "InferenceServer",
    "ModelRef",
    "StreamDelta",
]
