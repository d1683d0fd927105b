"""The edge's settings (prefix MOE_): the protocols, limits at the edge, streams and resumes, usage settlement."""

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.access.keystore import KeyCacheSettings
from moe_core.access.limits import ModelPrice
from moe_core.access.throttle import ThrottleSettings
from moe_core.llm.answer_records import AnswerRecordSettings
from moe_core.llm.client_profiles import ClientProfileSettings
from moe_core.llm.housekeeping import HousekeepingSwitch
from moe_core.llm.input_limits.settings import EdgeSettings
from moe_core.llm.model_map import DEFAULT_MODEL_MAP, ModelMapSettings
from moe_core.policy.settings import EgressSwitch
from moe_core.runtime.seed import SEED_ARCHITECTURE, SeedDefault
from moe_core.runtime.settings import FleetSettings


class GatewaySettings(ThrottleSettings, HousekeepingSwitch,  # ThrottleSettings: stream resumes, failed key lookups
                      KeyCacheSettings, AnswerRecordSettings,  # the key check's cache, the feedback window
                      EdgeSettings,  # EdgeSettings: limits at the edge
                      ModelMapSettings,  # client model ids -> modes (the control plane checks keys with it)
                      EgressSwitch,  # a key's data class, the x-moe-data-class header, a cache hit's record
                      ClientProfileSettings,  # MOE_CLIENT_PROFILES (the console may change them: LiveProfiles)
                      FleetSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = "gateway"
    http_port: int = 8002
    gateway_workers: int = Field(default=1, ge=1, description="Replicas (processes) on one port")
    request_timeout_s: float = Field(default=2100.0, gt=0, description="Deadline of a request: room for the "
                                     "longest chain of per-call timeouts (planner 300 s + expert 900 s + judge "
                                     "900 s, the original's); `make up`'s local fleet sets 300")
    deadline_grace_s: float = Field(default=3.0, ge=0, description="Wait past the deadline for the answer")
    keepalive_s: float = Field(default=10.0, gt=0, description="SSE keep-alive comment (ping) interval")
    resume_grace_s: float = Field(default=3.0, ge=0, description="Resumable streams: how long a stream whose "
                                  "client went away waits for it to resume (Last-Event-ID) before its Cancel")
    resume_lookback_s: float = Field(default=30.0, ge=0, description="Resumable streams: the request's events are "
                                     "read back from this long before its creation (clock skew between hosts)")
    settle_orphan_after_s: float = Field(default=30.0, ge=0, description="Usage: a request not settled this long "
                                         "after its deadline (plus MOE_DEADLINE_GRACE_S and MOE_RESUME_GRACE_S) is "
                                         "settled by the control plane's sweeper")
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description='JSON {mode or client model id: {"input": x, "output": y}}, prices per '
                                          "million tokens: enables cost budgets and spend in /v1/usage")
    limit_completion_tokens: int = Field(default=1024, ge=1, le=1_000_000, description="Limits: the completion "
                                         "tokens reserved for a request that sets no max_tokens")
    limit_reserve_multiplier: float = Field(default=1.0, ge=0.1, le=1000, description="Limits: a request's "
                                            "estimate is (prompt estimate + max tokens) x this; it must fit in "
                                            "every limit, else 429")
    limit_request_tokens: int = Field(default=32768, ge=1, le=10_000_000, description="Limits: the token cap "
                                      "reserved for a request, plus MOE_LIMIT_PROMPT_CALLS x its prompt's bytes (less "
                                      "when a limit has less room): all its model calls together never use more")
    limit_prompt_calls: int = Field(default=6, ge=0, le=100, description="Limits: how many model calls of a "
                                    "request the cap lets carry the whole prompt (an agent's tool list and system "
                                    "prompt go to the planner, the experts and the judge)")
    max_prompt_chars: int = Field(default=200_000, ge=1, description="The most characters of text a request's messages "
                                  "may hold together (400 context_length_exceeded above)")
    reasoning_format: Literal["reasoning_content", "think", "none"] = Field(
        default="reasoning_content",
        description="OpenAI streams: live progress and thinking as reasoning_content deltas, a <think> block "
                    "in content, or none (per request: metadata.reasoning_format)",
    )
    anthropic_thinking: bool = Field(
        default=True,
        description="Anthropic streams: live progress and thinking as thinking blocks unless the request "
                    'says thinking {"type": "disabled"}',
    )
    exact_cache: bool = Field(default=True, description="Answer exact repeats of cached questions here, from Redis "
                                                        "(written by the planner's semantic cache), with no hop")
    tool_max_tokens: int = Field(default=8192, ge=1, le=32768, description="Cap on the answer's tokens of a "
                                 "request with tools (a client profile may set its own)")
    reasoning_max_tokens: int = Field(default=16384, ge=1, le=32768, description="Cap on the answer's tokens in a "
                                      "mode that forces the thinking step (a client profile may set its own)")
    responses_ttl_s: int = Field(default=7 * 86400, ge=60, description="How long stored Responses API "
                                                                     "responses (previous_response_id) live")
    redis_max_connections: int = Field(
        default=64, ge=2, description="Redis connections the gateway opens at most (a command past them waits for "
        "one, up to 5 s); the pool keeps each one it opened (~17 KB each), and 256 opened at once by a burst of "
        "streams timed out connecting on a busy host")


SEED_DEFAULTS = (
    SeedDefault("CLAUDE_CODE_PROFILES", "[] (JSON array of integration profiles)", "MOE_CLIENT_PROFILES", [],
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (Claude Code / Agent Integration)"),
    SeedDefault("CLAUDE_CODE_MODELS", "(8 claude-* IDs), comma-separated", "MOE_MODEL_MAP", None,
                ours=dict(DEFAULT_MODEL_MAP),
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (Claude Code / Agent Integration)",
                why="structural: a map of shell patterns to modes instead of a list of ids: every claude-* id "
                    "(and OpenAI's gpt-*, o*, codex-*) works without a change when a new model id appears, and an "
                    "entry can send one id to another mode"),
    SeedDefault("TOOL_MAX_TOKENS", "8192", "MOE_TOOL_MAX_TOKENS", 8192,
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (Claude Code / Agent Integration)"),
    SeedDefault("REASONING_MAX_TOKENS", "16384", "MOE_REASONING_MAX_TOKENS", 16384,
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (Claude Code / Agent Integration)"),
)
