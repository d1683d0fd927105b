"""A lean fleet for the audit and lineage journeys: gateway, planner, expert-worker, merger and codex-lineage
(own topic namespace, own audit schema in Postgres, scripted models), plus keys of two tenants and an admin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Scripted
from tests.support.audited_fleet import audited_fleet
from tests.support.fleet import REPO, Fleet
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace


@dataclass
class LineageFleet:
    fleet: Fleet
    env: dict[str, str]
    schema: str
    dsn: str  # the control plane's own role: it serves the audit API and may only read the audit store
    owner_dsn: str  # the audit store's owner: the database owner's rights
    rules: Path  # codex-lineage's compliance rule files (a copy of policy/compliance the tests may break)

    @property
    def gateway(self) -> str:
        return self.fleet["gateway"].url

    @property
    def control_plane(self) -> str:
        return self.fleet["control-plane"].url

    @property
    def lineage(self) -> str:
        return self.fleet["codex-lineage"].url

    def replay(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        """The replay command as an operator runs it (a process with the fleet's environment)."""
        return subprocess.run([sys.executable, "-m", "codex_lineage.replay", *args], env={**os.environ, **self.env},
                              cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)


@dataclass(frozen=True)
class Keys:
    tenant: str
    user: str
    other: str
    admin: str  # the fleet operator: reads across tenants where the policy allows (each read audited)
    tenant_admin: str  # a tenant admin of another tenant: sees only its own


@pytest.fixture(scope="package")
def tsa(infra: dict[str, str]) -> dict[str, str]:
    """The local RFC 3161 timestamp authority (Sigstore's timestamp-server, a fleetlib component): its URL
    and the PEM file of its certificate chain."""
    from fleetlib import api  # deploy/local (tests/conftest puts it on the path)

    api.ensure_up(["tsa"])
    return {"url": infra["tsa"], "chain": infra["tsa-chain"]}


@pytest.fixture(scope="package")
def lineage_fleet(infra: dict[str, str], scripted_server: Scripted) -> Iterator[LineageFleet]:
    rules = Path(tempfile.mkdtemp(prefix="compliance-rules-")) / "compliance"
    shutil.copytree(REPO / "policy" / "compliance", rules)
    with audited_fleet(infra, scripted_server.url, "lin", MOE_COMPLIANCE_RULES_DIR=str(rules),
                       MOE_COMPLIANCE_INTERVAL_S="2") as running:
        env = {**running.env, "MOE_HTTP_PORT": str(running.fleet["codex-lineage"].port),
               "MOE_AUDIT_WRITER_DSN": infra["postgres-codex-lineage"],  # the operator's replay, as with_fleet_env
               "MOE_AUDIT_MIGRATOR_DSN": running.owner_dsn}
        yield LineageFleet(running.fleet, env, running.schema, infra["postgres-control-plane"], running.owner_dsn,
                           rules)
    shutil.rmtree(rules.parent, ignore_errors=True)


@pytest.fixture(scope="package")
def keys(infra: dict[str, str]) -> Keys:
    tenant = new_namespace("tenant")
    user, other, admin, tenant_admin = new_keys(
        infra["postgres"], ("lineage-user", "user", [tenant]), ("lineage-other", "user", [f"{tenant}-other"]),
        ("lineage-admin", "operator", [f"{tenant}-admin"]), ("lineage-tenant-admin", "admin", [f"{tenant}-other"]))
    return Keys(tenant, user, other, admin, tenant_admin)
