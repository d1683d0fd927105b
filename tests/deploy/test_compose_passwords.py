"""Compose's stores require their passwords (as fleetctl's local stores and the chart's Secrets do): the
rendered model starts Redis with requirepass, Neo4j with auth and Postgres with a password, every stage
connects with them, and a missing password is an error, not a store without one."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.deploy.deploy_support import COMPOSE, compose_secrets, run
from tests.deploy.test_deploy_files import compose_binary

pytestmark = pytest.mark.unit


def _model(env: dict[str, str]) -> Any:
    """compose config with these variables exported (the shell wins over compose/.env)."""
    return run([compose_binary(), "-f", str(COMPOSE / "compose.yaml"), "config", "--format", "json"],
               env={**os.environ, **compose_secrets(), **env})


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


def test_each_postgres_user_logs_in_as_its_own_role_made_before_it_starts() -> None:
    from moe_core.runtime.pg.tables import role_of, services

    result = _model({"PG_GATEWAY_PASSWORD": "gw-pw", "PG_MCP_PASSWORD": "mcp-pw"})
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)["services"]
    for name in services():
        env = model[name]["environment"]
        assert env["MOE_POSTGRES_DSN"].startswith(f"postgresql://{role_of(name)}:"), name
        assert model[name]["depends_on"]["pg-migrate"]["condition"] == "service_completed_successfully", name
        assert "MOE_AUDIT_MIGRATE_ON_START" not in env, name
    assert model["gateway"]["environment"]["MOE_POSTGRES_DSN"].startswith("postgresql://moe_gateway:gw-pw@")
    migrate = model["pg-migrate"]
    assert migrate["environment"]["MOE_PG_PASSWORD_MOE_MCP"] == "mcp-pw"
    assert "moe_core.runtime.pg.migrate" in " ".join(migrate["command"])
    assert _model({"PG_MCP_PASSWORD": ""}).returncode != 0


def test_a_missing_redis_password_is_an_error() -> None:
    result = _model({"REDIS_PASSWORD": ""})
    assert result.returncode != 0
    assert "REDIS_PASSWORD" in result.stderr
