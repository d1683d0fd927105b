"""Checks on the record itself: topic retention (read from the broker), the audit chains being written and
signed, their checkpoints anchored by RFC 3161 timestamps, and the writer role's privileges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from codex_lineage.compliance.outcome import Outcome, verdict
from codex_lineage.compliance.sources import Sources

CHECKPOINTS = """
SELECT c.tenant_id, max(c.time) AS latest,
       max(c.time) FILTER (WHERE c.timestamp IS NOT NULL AND c.timestamp <> '') AS latest_timestamped
FROM audit_checkpoints c GROUP BY c.tenant_id ORDER BY c.tenant_id
"""
CHAINS = """
SELECT tenant_id, count(*) AS entries, max(recorded_at) AS newest,
       count(*) FILTER (WHERE signature IS NULL OR signature = '') AS unsigned
FROM audit_log GROUP BY tenant_id ORDER BY tenant_id
"""
PRIVILEGES = """
SELECT current_user AS role,
       has_table_privilege(current_user, 'audit_log', 'UPDATE') AS can_update,
       has_table_privilege(current_user, 'audit_log', 'DELETE') AS can_delete,
       has_table_privilege(current_user, 'audit_log', 'TRUNCATE') AS can_truncate,
       (SELECT tableowner = current_user FROM pg_tables WHERE schemaname = $1 AND tablename = 'audit_log') AS owner
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


async def topic_retention(src: Sources, params: dict[str, Any]) -> Outcome:
    """params: topics (kinds), min_days (at least; -1 = forever counts as enough; and no size limit or compaction
    may delete earlier) and/or max_days (finite and at most: storage limitation)."""
    kinds: list[str] = list(params.get("topics", []))
    low, high = params.get("min_days"), params.get("max_days")
    seen = await src.retention_days()
    limits = await src.deletion_limits()
    evidence: dict[str, Any] = {"source": f"broker {src.settings.kafka_bootstrap}: topic configs (retention.ms)",
                                "min_days": low, "max_days": high, "topics": {}}
    wrong: list[str] = []
    for kind in kinds:
        name = src.topic(kind)
        days = seen.get(name)
        evidence["topics"][name] = days
        if days is None:
            wrong.append(f"{name}: missing on the broker")
        elif low is not None and days != -1 and days < low:
            wrong.append(f"{name}: {days} days < {low}")
        elif high is not None and (days == -1 or days > high):
            wrong.append(f"{name}: {'forever' if days == -1 else f'{days} days'} > {high} days")
        if low is not None and days is not None:
            size = limits.get(name, {}).get("retention.bytes", "-1")
            policy = limits.get(name, {}).get("cleanup.policy", "delete")
            if size not in ("-1", ""):
                evidence.setdefault("size_limited", {})[name] = int(size)
                wrong.append(f"{name}: retention.bytes={size} may delete messages before {low} days")
            if "compact" in policy:
                evidence.setdefault("compacted", {})[name] = policy
                wrong.append(f"{name}: cleanup.policy={policy} keeps only the latest message per key")
    evidence["violations"] = wrong
    return verdict(not wrong, f"{len(kinds)} topics within the limits", "; ".join(wrong), evidence)


async def audit_recording(src: Sources, params: dict[str, Any]) -> Outcome:
    """Every tenant's chain is signed throughout; params: max_idle_hours (the newest entry of the whole store
    is at most this old, i.e. recording has not stopped)."""
    rows = await src.store.pool.fetch(CHAINS)
    if not rows:
        return Outcome("not_applicable", "the audit store holds no entries yet",
                       {"source": f"audit store (schema {src.store.schema})", "tenants": 0})
    unsigned = sum(int(r["unsigned"]) for r in rows)
    newest = max(r["newest"] for r in rows)
    idle = params.get("max_idle_hours")
    stale = idle is not None and newest < datetime.now(UTC) - timedelta(hours=float(idle))
    evidence = {"source": f"audit store (schema {src.store.schema}): audit_log",
                "signing_key_id": src.store.signer.key_id if src.store.signer else None,
                "tenants": len(rows), "entries": sum(int(r["entries"]) for r in rows), "unsigned_entries": unsigned,
                "newest_entry": _iso(newest), "max_idle_hours": idle}
    problems = ([f"{unsigned} entries without a signature"] if unsigned else []) + (
        [f"no entry recorded since {_iso(newest)}"] if stale else [])
    return verdict(not problems, f"{evidence['entries']} entries in {len(rows)} signed chains",
                   "; ".join(problems), evidence)


async def checkpoints_anchored(src: Sources, params: dict[str, Any]) -> Outcome:
    """Every tenant's chain has an RFC 3161-timestamped checkpoint younger than params.max_age_hours; a deployment
    that allows running unanchored (MOE_AUDIT_ALLOW_UNANCHORED, Helm's audit.allowUnanchored) fails, chains or not."""
    max_age = timedelta(hours=float(params.get("max_age_hours", 2)))
    if src.settings.audit_allow_unanchored:
        return Outcome("fail", "the deployment allows running unanchored (MOE_AUDIT_ALLOW_UNANCHORED; Helm: "
                       "audit.allowUnanchored): set a timestamp authority and a witness instead",
                       {"source": "codex-lineage's settings", "allow_unanchored": True,
                        "timestamp_authority": src.settings.audit_tsa_url or None,
                        "witness": src.settings.audit_witness_url or None})
    rows = await src.store.pool.fetch(CHECKPOINTS)
    chains = await src.store.pool.fetch("SELECT DISTINCT tenant_id FROM audit_log")
    evidence: dict[str, Any] = {"source": f"audit store (schema {src.store.schema}): audit_checkpoints",
                                "timestamp_authority": src.settings.audit_tsa_url or None,
                                "max_age_hours": max_age.total_seconds() / 3600, "tenants": {}}
    if not chains:
        return Outcome("not_applicable", "no audit chain to anchor yet", evidence)
    latest = {r["tenant_id"]: r for r in rows}
    now, late = datetime.now(UTC), []
    for (tenant,) in [tuple(c) for c in chains]:
        row = latest.get(tenant)
        stamped = row["latest_timestamped"] if row else None
        evidence["tenants"][tenant] = {"latest_checkpoint": _iso(row["latest"]) if row else None,
                                       "latest_timestamped": _iso(stamped)}
        if stamped is None or now - stamped > max_age:
            late.append(tenant)
    if not src.settings.audit_tsa_url:
        late = late or ["(all)"]
        evidence["problem"] = "no timestamp authority configured (MOE_AUDIT_TSA_URL)"
    evidence["late"] = late
    return verdict(not late, f"{len(chains)} chains anchored within {evidence['max_age_hours']:g} h",
                   f"{len(late)} chains without a recent timestamped checkpoint: {', '.join(late[:10])}", evidence)


async def writer_least_privilege(src: Sources, params: dict[str, Any]) -> Outcome:
    """The role codex-lineage writes the record with may not update, delete or truncate it (nor own it)."""
    row = await src.store.pool.fetchrow(PRIVILEGES, src.store.schema)
    evidence = {"source": "Postgres catalogs (has_table_privilege, pg_tables)", "role": row["role"],
                "update": row["can_update"], "delete": row["can_delete"], "truncate": row["can_truncate"],
                "owner": bool(row["owner"])}
    bad = [k for k in ("update", "delete", "truncate", "owner") if evidence[k]]
    return verdict(not bad, f"role {row['role']} may only read and insert the record",
                   f"role {row['role']} may {', '.join(bad)} the record (run codex_lineage.migrate with "
                   "MOE_AUDIT_WRITER_ROLE and a separate migrator)", evidence)
