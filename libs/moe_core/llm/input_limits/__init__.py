"""Every request body bounded, its JSON nesting, lists and strings bounded, its text Unicode: one ASGI guard
(InputLimits) in front of the edge and the control plane alike (errors in each API's own envelope)."""

from moe_core.llm.input_limits.middleware import InputLimits
from moe_core.llm.input_limits.settings import EdgeSettings

__all__ = ["EdgeSettings", "InputLimits"]
