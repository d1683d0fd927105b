"""Compose's stores require their passwords (as fleetctl's local stores and the chart's Secrets do): the
rendered model starts Redis with requirepass, Neo4j with auth and Postgres with a password, every stage
connects with them, and a missing password is an error, not a store without one."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.deploy.deploy_support import COMPOSE, run
from tests.deploy.test_deploy_files import compose_binary

pytestmark = pytest.mark.unit


def _model(env: dict[str, str]) -> Any:
    """compose config with these variables exported (the shell wins over compose/.env)."""
    return run([compose_binary(), "-f", str(COMPOSE / "compose.yaml"), "config", "--format", "json"],
               env={**os.environ, **env})


def test_every_store_and_every_stage_uses_its_password() -> None:
    result = _model({"REDIS_PASSWORD": "r3dis-pw", "NEO4J_PASSWORD": "n3o-pw", "POSTGRES_PASSWORD": "pg-pw"})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"]) and redis["environment"]["REDIS_PASSWORD"] == "r3dis-pw"
    assert redis["environment"]["REDISCLI_AUTH"] == "r3dis-pw"  # the healthcheck's redis-cli authenticates
    assert services["neo4j"]["environment"]["NEO4J_AUTH"] == "neo4j/n3o-pw"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-pw"
    users = [name for name, s in services.items() if "MOE_REDIS_URL" in (s.get("environment") or {})]
    assert "gateway" in users and "planner" in users
    for name in users:
        assert services[name]["environment"]["MOE_REDIS_URL"] == "redis://:r3dis-pw@redis:6379/0", name
    for name, service in services.items():
        env = service.get("environment") or {}
        if "MOE_NEO4J_URL" in env and name != "codex-lineage":  # codex-lineage only names the dataset
            assert env.get("MOE_NEO4J_PASSWORD") == "n3o-pw", name


def test_a_missing_redis_password_is_an_error() -> None:
    result = _model({"REDIS_PASSWORD": ""})
    assert result.returncode != 0
    assert "REDIS_PASSWORD" in result.stderr
