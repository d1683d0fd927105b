"""Who may read what over codex-lineage's API: one rule for every router.

A tenant admin (role `admin`) sees only its own tenants' data: a named tenant, dataset, run, request or catalog
entry of another tenant is a 404 exactly like an unknown one (nobody learns which exist), and a listing without
a tenant filter holds only its tenants' items (fleet-wide items that belong to no tenant, e.g. the topics, stay
visible). The fleet operator (role `operator`) reads across tenants. codex-lineage has no policy client: the
role decides here, where the control plane asks policy/opa/admin.rego (`operator_reads`) and records each
cross-tenant read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The chain of records and events that carry no tenant (moe_core.audit.store): the fleet's, not a tenant's.
NO_TENANT = "-"

# The tenants a request's entries are in (its records' and its events' chains).
REQUEST_TENANTS = "SELECT DISTINCT tenant_id FROM audit_log WHERE response_id = $1"

# Does the record know the tenant (has its chain an entry)?
KNOWN_TENANT = "SELECT EXISTS (SELECT 1 FROM audit_log WHERE tenant_id = $1)"


@dataclass(frozen=True)
class Access:
    """The caller of an admin endpoint: its role (`admin` or `operator`) and its key's tenants."""

    role: str
    tenants: tuple[str, ...]

    @property
    def fleet(self) -> bool:
        """The fleet operator: reads every tenant's data."""
        return self.role == "operator"

    def sees(self, tenant: str | None) -> bool:
        """May the caller see data of `tenant`? None (an item of no tenant, e.g. a topic) is fleet-wide: yes."""
        return tenant is None or self.fleet or tenant in self.tenants

    def owns(self, tenant: str) -> bool:
        """May the caller read the named tenant (its dataset, its period)? The tenant-less chain ('-') is the
        operator's only."""
        return self.fleet or (tenant != NO_TENANT and tenant in self.tenants)

    def visible(self, items: Iterable[dict[str, Any]], tenant_of: str = "tenant") -> list[dict[str, Any]]:
        """The items the caller sees (`tenant_of`: the key naming an item's tenant; a missing or null one is
        fleet-wide)."""
        return [i for i in items if self.sees(i.get(tenant_of))]

    async def sees_tenant(self, pool: Any, tenant: str) -> bool:
        """A named tenant (a `tenant` filter, a dataset graph/<tenant>) is the caller's and the record knows it.
        False for another tenant's exactly as for an unknown one (the store is not asked then), so the caller
        answers both with the same 404."""
        return self.owns(tenant) and bool(await pool.fetchval(KNOWN_TENANT, tenant))

    async def sees_request(self, pool: Any, response_id: str) -> bool:
        """A request is the caller's when every chain its entries are in is one of the caller's tenants, apart
        from the tenant-less one, and at least one is (the operator: any request). False for an unknown one."""
        found = {r["tenant_id"] for r in await pool.fetch(REQUEST_TENANTS, response_id)}
        if self.fleet:
            return bool(found)
        named = found - {NO_TENANT}
        return bool(named) and named <= set(self.tenants)
