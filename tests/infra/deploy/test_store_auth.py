"""No local store accepts a connection without its password: Redis, Postgres and Neo4j initialised from
scratch by fleetctl (a throwaway data directory on free ports, so the shared instances are untouched) get
generated passwords in <data>/secrets.json (mode 0600), Postgres uses scram-sha-256 (no trust), and the
fleet's endpoints carry the passwords."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from neo4j import AsyncGraphDatabase
from neo4j.exceptions import AuthError
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from tests.support.fleet import free_port

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]
FLEETCTL = [sys.executable, str(REPO / "deploy" / "local" / "fleetctl.py")]
STORES = ["redis", "postgres", "neo4j"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], dict[str, str], Path]]:
    """(endpoints, secrets, data dir) of stores fleetctl started from scratch in a throwaway data dir."""
    data = tmp_path_factory.mktemp("stores")
    data.chmod(0o755)  # the postgres user must reach its cluster
    env = {**os.environ, "MOE_DATA_DIR": str(data), "MOE_REDIS_PORT": str(free_port()),
           "MOE_POSTGRES_PORT": str(free_port()), "MOE_NEO4J_BOLT_PORT": str(free_port()),
           "MOE_NEO4J_HTTP_PORT": str(free_port())}
    try:
        up = subprocess.run([*FLEETCTL, "up", *STORES], env=env, capture_output=True, text=True, timeout=400,
                            check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        probe = "import fleetctl, json; print(json.dumps(fleetctl.endpoints()))"
        eps = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                             cwd=REPO / "deploy" / "local").stdout
        yield json.loads(eps), json.loads((data / "secrets.json").read_text()), data
    finally:  # only the throwaway stores: their pid files live in the throwaway data dir
        subprocess.run([*FLEETCTL, "down", *STORES], env=env, capture_output=True, timeout=120, check=False)


def test_passwords_are_generated_private_and_carried_by_the_endpoints(
        fresh: tuple[dict[str, str], dict[str, str], Path]) -> None:
    eps, secrets, data = fresh
    assert stat.S_IMODE((data / "secrets.json").stat().st_mode) == 0o600
    assert set(secrets) >= {"redis", "postgres", "postgres-admin", "neo4j"}
    assert all(len(v) >= 24 for v in secrets.values())
    assert f":{secrets['redis']}@" in eps["redis"] and f":{secrets['postgres']}@" in eps["postgres"]
    assert (eps["neo4j-user"], eps["neo4j-password"]) == ("neo4j", secrets["neo4j"])
    hba = [line.split() for line in (data / "postgres" / "pg_hba.conf").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    assert hba and {row[-1] for row in hba} == {"scram-sha-256"}


async def test_redis_needs_its_password(fresh: tuple[dict[str, str], dict[str, str], Path]) -> None:
    eps, _, _ = fresh
    port = int(eps["redis"].rsplit(":", 1)[1].split("/")[0])
    for password in (None, "wrong-password"):
        client = Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)
        with pytest.raises((AuthenticationError, ResponseError)):
            await client.ping()
        await client.aclose()
    client = Redis.from_url(eps["redis"], socket_timeout=5)
    assert await client.ping()
    await client.aclose()


async def test_postgres_needs_its_password(fresh: tuple[dict[str, str], dict[str, str], Path]) -> None:
    eps, _, data = fresh
    port = int(eps["postgres"].rsplit(":", 1)[1].split("/")[0])
    for user, password in (("moe", None), ("postgres", None), ("moe", "wrong-password")):
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await asyncpg.connect(host="127.0.0.1", port=port, user=user, password=password, database="moe",
                                  timeout=5)
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        await asyncpg.connect(host=str(data / "postgres-run"), port=port, user="postgres", database="postgres",
                              timeout=5)  # the unix socket too: no trust anywhere
    conn = await asyncpg.connect(eps["postgres"], timeout=5)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()


async def test_neo4j_needs_its_password(fresh: tuple[dict[str, str], dict[str, str], Path]) -> None:
    eps, _, _ = fresh
    for auth in (None, ("neo4j", "neo4j"), ("neo4j", "wrong-password")):
        driver = AsyncGraphDatabase.driver(eps["neo4j"], auth=auth, connection_timeout=5)
        with pytest.raises(AuthError):
            await driver.verify_connectivity()
        await driver.close()
    driver = AsyncGraphDatabase.driver(eps["neo4j"], auth=(eps["neo4j-user"], eps["neo4j-password"]),
                                       connection_timeout=5)
    records, _, _ = await driver.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1
    await driver.close()


async def test_a_fresh_postgres_gets_each_services_role_with_its_password_and_migrates(
        fresh: tuple[dict[str, str], dict[str, str], Path]) -> None:
    """A fresh clone's path: the roles (migrators, each service's) made with generated passwords; the migration
    fleetctl runs before the services start makes the tables, and each role gets its declared grants only."""
    from moe_core.runtime.pg.roles import every_role
    from moe_core.runtime.pg.tables import role_of, services

    eps, secrets, data = fresh
    assert all(len(secrets[role]) >= 24 for role in every_role())
    port = eps["postgres"].rsplit(":", 1)[1].split("/")[0]
    env = {**os.environ, "MOE_DATA_DIR": str(data), "MOE_POSTGRES_PORT": port}
    done = subprocess.run([sys.executable, "-c", "from fleetlib import api; api.migrate()"], env=env,
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO / "deploy" / "local")
    assert done.returncode == 0, done.stdout + done.stderr
    for service in services():
        role = role_of(service)
        assert f"//{role}:{secrets[role]}@" in eps[f"postgres-{service}"]
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=int(port), user=role, password="wrong", database="moe",
                                  timeout=5)
    gateway = await asyncpg.connect(eps["postgres-gateway"], timeout=5)
    mcp = await asyncpg.connect(eps["postgres-mcp"], timeout=5)
    try:
        assert await gateway.fetchval("SELECT count(*) FROM api_keys") == 0
        assert await mcp.fetchval("SELECT count(*) FROM api_keys_resolved") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await mcp.execute("INSERT INTO api_keys DEFAULT VALUES")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await gateway.execute("CREATE TABLE intruder (a int)")
    finally:
        await gateway.close()
        await mcp.close()
