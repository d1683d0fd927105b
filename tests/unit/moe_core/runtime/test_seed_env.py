"""A migrated `.env` with the seed's variable names configures the fleet's settings as written; a seed name the fleet
does not read stops the start naming it and what to set instead; an unknown MOE_* name is a warning
(moe_core.runtime.seed_env)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from expert_worker.settings import ExpertSettings
from gateway.settings import GatewaySettings
from graph_rag.settings import GraphRagSettings
from merger.settings import MergerSettings
from moe_core.llm.inference.config import InferenceConfig
from moe_core.runtime.seed_env import SEED_VARIABLES, SeedVariableRefused
from planner.settings import PlannerSettings
from research.settings import ResearchSettings

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[4]

SEED_ENV = """\
INFERENCE_SERVERS='[{"name": "gpu1", "url": "http://10.0.0.5:11434", "models": ["gemma3:4b", "phi4:14b"]}]'
JUDGE_MODEL=gemma3:4b
JUDGE_ENDPOINT=gpu1
PLANNER_MODEL=phi4:14b
PLANNER_ENDPOINT=gpu1
EXPERT_MODELS='{"math": [{"model": "phi4:14b", "endpoint": "gpu1"}], "general": ["gemma3:4b"]}'
REDIS_URL=redis://terra_cache:6379
KAFKA_URL=kafka://moe-kafka:9092
NEO4J_URI=bolt://neo4j-knowledge:7687
NEO4J_USER=neo4j
NEO4J_PASS=moe-sovereign
CHROMA_HOST=chromadb-vector
SEARXNG_URL=http://searxng:8080
CACHE_HIT_THRESHOLD=0.12
SOFT_CACHE_THRESHOLD=0.4
MAX_EXPERT_OUTPUT_CHARS=3100
HISTORY_MAX_TURNS=6
HISTORY_MAX_CHARS=5000
EXPERT_MIN_SCORE=0.4
EXPERT_MIN_DATAPOINTS=7
PLANNER_TIMEOUT=240
JUDGE_TIMEOUT=600
EXPERT_TIMEOUT=450
TOOL_MAX_TOKENS=4096
LOG_LEVEL=debug
"""
# every variable of the seed's configuration references (seed 001 Configuration Reference, 002 section 13)
SEED_NAMES = {
    "INFERENCE_SERVERS", "JUDGE_MODEL", "JUDGE_ENDPOINT", "PLANNER_MODEL", "PLANNER_ENDPOINT", "GRAPH_INGEST_MODEL",
    "GRAPH_INGEST_ENDPOINT", "EXPERT_MODELS", "MCP_URL", "SEARXNG_URL", "CACHE_HIT_THRESHOLD", "SOFT_CACHE_THRESHOLD",
    "SOFT_CACHE_MAX_EXAMPLES", "CACHE_MIN_RESPONSE_LEN", "MAX_EXPERT_OUTPUT_CHARS", "EXPERT_TIER_BOUNDARY_B",
    "EXPERT_MIN_SCORE", "EXPERT_MIN_DATAPOINTS", "HISTORY_MAX_TURNS", "HISTORY_MAX_CHARS", "JUDGE_TIMEOUT",
    "EXPERT_TIMEOUT", "PLANNER_TIMEOUT", "REDIS_URL", "POSTGRES_CHECKPOINT_URL", "CHROMA_HOST", "NEO4J_URI",
    "NEO4J_USER", "NEO4J_PASS", "KAFKA_URL", "CLUSTER_HARDWARE", "LOG_LEVEL", "CLAUDE_CODE_PROFILES",
    "CLAUDE_CODE_MODELS", "TOOL_MAX_TOKENS", "REASONING_MAX_TOKENS",
}


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in [n for n in os.environ if n.startswith("MOE_") or n in SEED_NAMES]:
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text(SEED_ENV)
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_every_seed_variable_is_read_or_refused() -> None:
    assert {v.name for v in SEED_VARIABLES} == SEED_NAMES


def test_a_seed_env_configures_the_settings_as_written(seed_env: dict[str, str]) -> None:
    planner, expert = PlannerSettings(), ExpertSettings()
    assert (planner.redis_url, planner.kafka_bootstrap, planner.log_level) == (
        "redis://terra_cache:6379", "moe-kafka:9092", "DEBUG")
    assert (planner.chroma_url, planner.cache_hard_threshold, planner.cache_soft_threshold) == (
        "http://chromadb-vector:8000", 0.12, 0.4)
    assert planner.planner_timeout_s == 240
    assert (expert.expert_max_output_chars, expert.expert_history_turns, expert.expert_history_chars) == (
        3100, 6, 5000)
    assert (expert.score_min, expert.score_min_ratings) == (0.4, 7)
    assert expert.expert_timeout_s == 450 and MergerSettings().judge_timeout_s == 600
    graph = GraphRagSettings()
    assert (graph.neo4j_url, graph.neo4j_user, graph.neo4j_password) == (
        "bolt://neo4j-knowledge:7687", "neo4j", "moe-sovereign")
    assert ResearchSettings().searxng_url == "http://searxng:8080"
    assert GatewaySettings().tool_max_tokens == 4096
    config = InferenceConfig.from_settings(expert)
    assert [str(r) for r in config.for_role("judge")] == ["gemma3:4b@gpu1"]
    assert [str(r) for r in config.for_role("planner")] == ["phi4:14b@gpu1"]
    assert [str(r) for r in config.for_expert("math")] == ["phi4:14b@gpu1"]
    assert [r.model for r in config.for_expert("general")] == ["gemma3:4b"]


def test_an_empty_seed_name_is_not_set(seed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose hands `${REDIS_URL}` of an unset name as an empty string: the default stays."""
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("MCP_URL", " ")
    assert PlannerSettings().redis_url == PlannerSettings.model_fields["redis_url"].default


def test_the_fleets_own_name_wins(seed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_REDIS_URL", "redis://127.0.0.1:6390/1")
    assert PlannerSettings().redis_url == "redis://127.0.0.1:6390/1"


@pytest.mark.parametrize(("name", "value", "says"), [
    ("MCP_URL", "http://mcp-precision:8003", "moe.tasks.mcp.v1"),
    ("CLUSTER_HARDWARE", "{}", "INFERENCE_SERVERS"),
    ("CLAUDE_CODE_MODELS", "claude-3", "MOE_MODEL_MAP"),
])
def test_a_seed_name_the_fleet_does_not_read_is_refused(seed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                        name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SeedVariableRefused, match=name) as refused:
        PlannerSettings()
    assert says in str(refused.value)


def test_an_endpoint_without_its_model_is_refused(seed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANNER_MODEL")
    with pytest.raises(SeedVariableRefused, match="PLANNER_ENDPOINT is set without PLANNER_MODEL"):
        PlannerSettings()


def test_an_unknown_moe_name_is_a_warning(seed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MOE_CACHE_HARD_TRESHOLD", "0.1")  # a typo
    monkeypatch.setenv("MOE_PLANNER_MAX_TASKS", "4")  # the planner's: known to the fleet, not the expert-worker's
    with caplog.at_level(logging.WARNING, logger="moe_core.runtime.seed_env"):
        ExpertSettings()
    warned = [r.getMessage() for r in caplog.records]
    assert any("MOE_CACHE_HARD_TRESHOLD is not a setting of the fleet" in m and "MOE_CACHE_HARD_THRESHOLD" in m
               for m in warned), warned
    assert not any("MOE_PLANNER_MAX_TASKS" in m for m in warned), warned


def test_a_service_refuses_to_start_naming_the_variable(seed_env: dict[str, str]) -> None:
    """The real entry point (the mcp service's): it stops before it connects to anything."""
    env = {**os.environ, "MCP_URL": "http://mcp-precision:8003"}
    done = subprocess.run([sys.executable, "-m", "mcp_service"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "MCP_URL (the seed's) is not read by the fleet" in done.stderr, done.stderr[-2000:]


def test_the_local_fleets_own_environment_warns_about_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make up` hands each service (its ports, paths, endpoints) is all known: a warning means something."""
    from fleetlib import services  # deploy/local, on the path in the test run (as tests/graph does)

    import moe_core.stage.registry as stage_registry
    from moe_core.runtime.seed_env import unknown_moe_variables

    for name in [n for n in os.environ if n.startswith("MOE_")]:
        monkeypatch.delenv(name)
    for entry in stage_registry.FLEET:
        assert unknown_moe_variables(services.service_env(entry.name), PlannerSettings.model_fields) == [], entry.name
