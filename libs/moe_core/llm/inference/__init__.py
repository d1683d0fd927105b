"""Calls inference servers (OpenAI-compatible or Ollama) chosen by configuration."""

from moe_core.llm.inference.client import Completion, InferenceClient, StreamDelta
from moe_core.llm.inference.config import InferenceConfig, InferenceServer, ModelRef
from moe_core.llm.inference.fleet import InferenceFleet
from moe_core.runtime.inference_errors import InferenceError

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
