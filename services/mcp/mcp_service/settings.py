from pydantic import Field, SecretStr

from moe_core.access.throttle import ThrottleSettings
from moe_core.runtime.settings import FleetSettings


class McpSettings(ThrottleSettings, FleetSettings):  # ThrottleSettings: a key's tool calls a minute
    service_name: str = "mcp"
    http_port: int = 8003
    tool_timeout_s: float = Field(default=5.0, gt=0, description="hard time bound of one tool call")
    tool_switch_ttl_s: float = Field(default=1.0, ge=0, le=60, description="How often the operator's tool "
                                     "switches (the console's on/off) are read from Redis, at most")
    tool_workers: int = Field(default=2, ge=1, le=64, description="worker processes running tool calls")
    tool_memory_mb: int = Field(default=1024, ge=0, description="address-space limit per worker; 0 = none")
    tool_max_result_bytes: int = Field(default=1_000_000, ge=1000, description="largest result (JSON bytes)")
    result_ttl_s: int = Field(default=3600, description="How long a task's result is remembered for redeliveries")
    mcp_allowed_hosts: str = Field(
        default="", description="Host headers /mcp accepts (DNS-rebinding guard); empty = localhost, '*' = any"
    )
    mcp_service_key: SecretStr = Field(
        default=SecretStr(""), description="In-cluster service key /invoke and /mcp accept besides the gateway's API "
                                           "keys (a Secret in Helm); empty = API keys only")
    auth_cache_ttl_s: float = Field(default=1.0, ge=0, le=60, description="how long a verified API key is trusted")
