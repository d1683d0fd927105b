"""The model map: client model ids (wildcards) -> modes; a bad map fails at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from moe_core.llm.model_map import DEFAULT_MODEL_MAP, resolve_mode

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("model", "mode"), [
    ("moe-orchestrator-code", "moe-orchestrator-code"),
    ("claude-sonnet-4-5-20250929", "moe-orchestrator"),
    ("gpt-4.1-mini", "moe-orchestrator"),
    ("o4-mini", "moe-orchestrator"),
    ("llama3", None),
    ("Claude-sonnet", None),  # case-sensitive, as model ids are
])
def test_default_map(model: str, mode: str | None) -> None:
    assert resolve_mode(model, DEFAULT_MODEL_MAP) == mode


def test_exact_keys_beat_patterns_and_patterns_go_in_order() -> None:
    mapping = {"claude-*": "moe-orchestrator", "claude-*haiku*": "moe-orchestrator-concise",
               "claude-haiku-4-5": "moe-orchestrator-code"}
    assert resolve_mode("claude-haiku-4-5", mapping) == "moe-orchestrator-code"
    assert resolve_mode("claude-3-5-haiku", mapping) == "moe-orchestrator"  # the first pattern wins
    assert resolve_mode("moe-orchestrator-plan", mapping) == "moe-orchestrator-plan"  # modes mean themselves


def test_the_map_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_MODEL_MAP",
                       '{"claude-*haiku*": "moe-orchestrator-concise", "claude-*": "moe-orchestrator"}')
    settings = GatewaySettings()
    assert resolve_mode("claude-haiku-4-5", settings.model_map) == "moe-orchestrator-concise"
    assert resolve_mode("gpt-4o", settings.model_map) is None  # the configured map replaces the default


@pytest.mark.parametrize("raw", ['{"claude-*": "no-such-mode"}', '{"": "moe-orchestrator"}'])
def test_a_bad_map_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("MOE_MODEL_MAP", raw)
    with pytest.raises(ValidationError):
        GatewaySettings()
