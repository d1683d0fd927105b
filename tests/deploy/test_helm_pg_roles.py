"""The chart's Postgres wiring: each component that uses Postgres logs in as its own role, and a pre-install/
pre-upgrade Job migrates the stores as their owners first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_support import rendered_docs

pytestmark = pytest.mark.unit


def _kinds(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_each_postgres_component_logs_in_as_its_own_role_migrated_before_it_starts() -> None:
    """Every component with `postgres: true` reads its own role's DSN (key: its name); the pre-install/pre-upgrade
    Job migrates the fleet and audit stores as their owners (and makes the roles only with createRoles)."""
    from moe_core.runtime.pg.tables import services

    docs = rendered_docs([])
    deployments = _kinds(docs, "Deployment")
    for name in services():
        [container] = deployments[f"moe-{name}"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["MOE_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "moe-postgres", "key": name}, name
        assert "MOE_AUDIT_MIGRATE_ON_START" not in env, name
    job = _kinds(docs, "Job")["moe-pg-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    [container] = job["spec"]["template"]["spec"]["containers"]
    script = container["args"][0]
    assert "python -m moe_core.runtime.pg.migrate" in script and "python -m codex_lineage.migrate" in script
    assert "moe_core.runtime.pg.roles" not in script
    keys = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
    assert keys["MOE_PG_MIGRATOR_DSN"] == "migrator" and keys["MOE_AUDIT_MIGRATOR_DSN"] == "audit-migrator"
    with_roles = _kinds(rendered_docs([], ["postgres.createRoles=true"]), "Job")["moe-pg-migrate"]
    [container] = with_roles["spec"]["template"]["spec"]["containers"]
    assert "python -m moe_core.runtime.pg.roles" in container["args"][0]
    keys = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
    assert keys["MOE_PG_ADMIN_DSN"] == "admin" and keys["MOE_PG_DSN_MOE_GAP_HEALER"] == "gap-healer"
