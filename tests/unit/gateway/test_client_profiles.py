"""Client profiles (gateway.client_profiles): which profile a request gets (header, key, User-Agent) and the
token caps it applies; bad configuration fails at start-up. The edge applying them:
tests/e2e/moe_core/llm/test_client_profiles.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.client_profiles import ClientProfile, capped, choose, client_headers, token_cap
from gateway.settings import GatewaySettings
from moe_core.access.keystore import ApiKey
from moe_core.contracts import GenerationParams
from moe_core.runtime.openai_error import OpenAIError

pytestmark = pytest.mark.unit
CLAUDE = ClientProfile(name="claude-code", user_agents=["claude-cli/*"], mode="moe-orchestrator-agent-orchestrated",
                       tool_max_tokens=4096)
WEBUI = ClientProfile(name="open-webui", keys=["webui-key"], max_tokens=2048, reasoning_format="think")
PROFILES = [CLAUDE, WEBUI]


def _key(name: str, key_id: str = "k1") -> ApiKey:
    return ApiKey(id=key_id, name=name, role="user", tenant_ids=("t",))


def _choose(header: str = "", user_agent: str = "", key: ApiKey | None = None) -> ClientProfile | None:
    token = client_headers.set((header, user_agent))
    try:
        return choose(PROFILES, key)
    finally:
        client_headers.reset(token)


def test_the_header_then_the_key_then_the_user_agent_choose() -> None:
    assert _choose(user_agent="claude-cli/2.0.14 (external, cli)") == CLAUDE
    assert _choose(user_agent="claude-cli/2.0.14", key=_key("webui-key")) == WEBUI  # the key beats the agent
    assert _choose(key=_key("other", key_id="webui-key")) == WEBUI  # by id too
    assert _choose(header="claude-code", key=_key("webui-key")) == CLAUDE  # the header beats both
    assert _choose(user_agent="python-httpx/0.28", key=_key("other")) is None
    with pytest.raises(OpenAIError) as err:
        _choose(header="cursor")
    assert (err.value.status, err.value.code, err.value.param) == (404, "profile_not_found", "x-moe-profile")
    assert "claude-code, open-webui" in str(err.value.message)


@pytest.mark.parametrize(("profile", "mode", "tools", "asked", "sent"), [
    (None, "moe-orchestrator", True, 20000, 8192),  # the edge's TOOL_MAX_TOKENS
    (None, "moe-orchestrator", True, None, None),  # a cap, not a default
    (None, "moe-orchestrator-research", False, 30000, 16384),  # REASONING_MAX_TOKENS in a thinking mode
    (None, "moe-orchestrator", False, 30000, 30000),  # no profile, no tools: untouched
    (CLAUDE, "moe-orchestrator-agent-orchestrated", True, 32000, 4096),  # the profile's own tool cap
    (CLAUDE, "moe-orchestrator-agent-orchestrated", False, 32000, 16384),
    (WEBUI, "moe-orchestrator", False, None, 2048),  # the profile's default
    (WEBUI, "moe-orchestrator", False, 500, 500),  # never raised
    (WEBUI, "moe-orchestrator", False, 9000, 2048),
])
def test_token_caps(profile: ClientProfile | None, mode: str, tools: bool, asked: int | None,
                    sent: int | None) -> None:
    settings = GatewaySettings()
    cap, default = token_cap(profile, mode, tools, settings.tool_max_tokens, settings.reasoning_max_tokens)
    assert capped(GenerationParams(max_tokens=asked), cap, default).max_tokens == sent


def test_bad_profiles_fail_at_start_up() -> None:
    with pytest.raises(ValidationError, match="not a mode"):
        GatewaySettings(client_profiles=[{"name": "x", "mode": "gpt-4o"}])
    with pytest.raises(ValidationError, match="used twice"):
        GatewaySettings(client_profiles=[{"name": "x"}, {"name": "x"}])
    with pytest.raises(ValidationError, match="Extra inputs"):
        GatewaySettings(client_profiles=[{"name": "x", "max_token": 5}])
    assert GatewaySettings().client_profiles == []  # the original's CLAUDE_CODE_PROFILES default
