"""The Postgres declaration (moe_core.runtime.pg.tables) against the code: every table or privilege a service's own SQL
uses is declared for that service; a libs module with SQL that a service imports names only tables the service
may at least read; every table named anywhere is declared; every declared fleet table is made by a migration;
every declared service exists."""

from __future__ import annotations

import functools
import re

import pytest

import moe_core.stage.registry as stage_registry
from moe_core.runtime.pg.ddl import MIGRATIONS
from moe_core.runtime.pg.tables import MIGRATOR_ONLY, TABLES, privileges, services, tables
from tests.deploy.doc_support import REPO
from tests.deploy.pg_usage import file_uses, package_uses, uses

pytestmark = pytest.mark.unit

DECLARED = {t.name for t in TABLES}
IMPORTS = re.compile(r"^\s*(?:from|import)\s+(moe_core(?:\.\w+)+)", re.M)


def violations(service: str, used: dict[tuple[str, str], list[str]]) -> list[str]:
    return [f"{service} {privilege} {table}: not declared ({where[0]})"
            for (table, privilege), where in sorted(used.items())
            if table not in DECLARED or privilege not in privileges(service, table)]


@functools.cache
def _libs_sql() -> dict[str, set[str]]:
    """libs module (dotted) -> the tables its SQL names."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO / "libs" / "moe_core").rglob("*.py")):
        found = {t for (t, _) in file_uses(path)}
        if found:
            out[".".join(path.relative_to(REPO / "libs").with_suffix("").parts)] = found
    return out


@pytest.mark.parametrize("service", stage_registry.names())
def test_a_services_sql_uses_only_what_it_declares(service: str) -> None:
    assert violations(service, package_uses(REPO / "services" / service)) == []


@pytest.mark.parametrize("service", stage_registry.names())
def test_the_libs_sql_a_service_imports_names_only_tables_it_may_read(service: str) -> None:
    sql = _libs_sql()
    imported = {m for path in (REPO / "services" / service).rglob("*.py") for m in IMPORTS.findall(path.read_text())}
    wrong = [f"{module}: {table}" for module in sorted(imported & set(sql)) for table in sorted(sql[module])
             if table not in MIGRATOR_ONLY and "SELECT" not in privileges(service, table)]
    assert wrong == [], f"{service} imports SQL on tables it does not declare"


def test_every_table_named_in_libs_is_declared() -> None:
    named = {t for (t, _) in package_uses(REPO / "libs")}
    assert named - DECLARED - set(MIGRATOR_ONLY) == set()


def test_every_declared_fleet_table_is_made_by_one_migration() -> None:
    made = [name for m in MIGRATIONS for name in m.tables]
    assert sorted(made) == sorted(t.name for t in tables("fleet"))
    for m in MIGRATIONS:
        for name in m.tables:
            assert re.search(rf"CREATE (?:TABLE IF NOT EXISTS|OR REPLACE VIEW) {name}\b", m.sql), (m.name, name)


def test_every_declared_service_is_a_service_of_the_fleet() -> None:
    assert set(services()) <= set(stage_registry.names())
    assert {t.owner for t in TABLES} <= set(stage_registry.names())


def test_the_check_fails_on_a_use_that_is_not_declared() -> None:
    """The scanner sees each kind of use, and the check names a service's undeclared table or privilege."""
    assert uses('INSERT INTO api_keys (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = $1 RETURNING id') == {
        ("api_keys", "INSERT"), ("api_keys", "UPDATE"), ("api_keys", "SELECT")}
    assert uses('DELETE FROM "audit".audit_log WHERE seq = $1') == {("audit_log", "DELETE")}
    assert uses("WITH RECURSIVE t AS (SELECT 1 FROM graph_runs r JOIN tenants x ON true) SELECT * FROM t") == {
        ("graph_runs", "SELECT"), ("tenants", "SELECT")}
    second = "WITH a AS (SELECT seq FROM audit_log ORDER BY seq),\nb AS (SELECT 1 FROM tenants) SELECT * FROM a, b"
    assert uses(second) == {("audit_log", "SELECT"), ("tenants", "SELECT")}  # a CTE after a closing parenthesis
    assert uses("UPDATE tenants SET name = $2") == {("tenants", "UPDATE")}
    planted = {("api_keys", "INSERT"): ["services/mcp/x.py: INSERT INTO api_keys"],
               ("secrets", "SELECT"): ["services/mcp/x.py: SELECT * FROM secrets"],
               ("api_keys_resolved", "SELECT"): ["services/mcp/auth.py"]}
    assert violations("mcp", planted) == [
        "mcp INSERT api_keys: not declared (services/mcp/x.py: INSERT INTO api_keys)",
        "mcp SELECT secrets: not declared (services/mcp/x.py: SELECT * FROM secrets)"]
