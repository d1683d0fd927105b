"""deploy/profiles/seed.env, the original's behaviour as a profile: loaded as an operator would (dotenv), the fleet's
settings are the original's timeouts, a deadline that holds them, VRAM unload on every Ollama server that does not
say otherwise, and all of a tier's models asked together (the expert-worker asks them side by side)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dotenv import dotenv_values

from expert_worker.settings import ExpertSettings
from expert_worker.tiers import groups
from gateway.settings import GatewaySettings
from merger.settings import MergerSettings
from moe_core.llm.inference import InferenceConfig, ModelRef
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit
PROFILE = Path(__file__).resolve().parents[3] / "deploy" / "profiles" / "seed.env"
SERVERS = [{"name": "gpu1", "url": "http://10.0.0.5:11434", "api": "ollama", "models": ["phi4:14b"]},
           {"name": "gpu2", "url": "http://10.0.0.6:11434", "api": "ollama", "models": ["gemma3:4b"],
            "unload_after_expert": False},  # a server that says otherwise keeps its models
           {"name": "vllm", "url": "http://10.0.0.7:8000", "models": ["qwen"]}]  # not Ollama: nothing to unload


@pytest.fixture
def profile(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in [n for n in os.environ if n.startswith("MOE_")]:
        monkeypatch.delenv(name)
    values = {k: v for k, v in dotenv_values(PROFILE).items() if v is not None}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INFERENCE_SERVERS", json.dumps(SERVERS))
    return values


def test_the_seed_profile_configures_the_fleet_as_the_original(profile: dict[str, str]) -> None:
    assert set(profile) == {"MOE_JUDGE_TIMEOUT_S", "MOE_EXPERT_TIMEOUT_S", "MOE_PLANNER_TIMEOUT_S",
                            "MOE_REQUEST_TIMEOUT_S", "MOE_UNLOAD_AFTER_EXPERT", "MOE_EXPERT_PARALLEL"}
    expert, merger, planner = ExpertSettings(), MergerSettings(), PlannerSettings()
    assert (merger.judge_timeout_s, expert.expert_timeout_s, planner.planner_timeout_s) == (900, 900, 300)
    assert GatewaySettings().request_timeout_s >= 900 + 900 + 300
    servers = {s.name: s.unload_after_expert for s in InferenceConfig.from_settings(expert).servers}
    assert servers == {"gpu1": True, "gpu2": False, "vllm": False}
    tier = [ModelRef(model=f"m{i}") for i in range(4)]
    assert [[r.model for r in g] for g in groups(tier, expert.expert_parallel)] == [["m0"], ["m1"], ["m2"], ["m3"]]


def test_without_the_profile_no_server_unloads_and_a_tier_asks_one_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("MOE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INFERENCE_SERVERS", json.dumps(SERVERS))
    expert = ExpertSettings()
    assert not any(s.unload_after_expert for s in InferenceConfig.from_settings(expert).servers)
    assert expert.expert_parallel == 1
