"""Checks on oversight and access: approval coverage of knowledge imports (from the recorded audit events), the
import policy and its versions, API key expiry and key changes in the audit chain, documents on file."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from codex_lineage.compliance.outcome import Outcome, verdict
from codex_lineage.compliance.rules import resolve
from codex_lineage.compliance.sources import Sources

IMPORT_ACTIONS = ["knowledge_import_created", "knowledge_import_approved", "knowledge_import_applied"]
ACTIVE_ADMIN_KEYS = """
SELECT k.id, k.created_at, (to_jsonb(k) ->> 'expires_at')::timestamptz AS expires_at,
       (to_jsonb(k) ->> 'rotated_at')::timestamptz AS rotated_at
FROM api_keys k
WHERE k.role IN ('admin', 'operator') AND k.revoked_at IS NULL
  AND ((to_jsonb(k) ->> 'expires_at') IS NULL OR (to_jsonb(k) ->> 'expires_at')::timestamptz > now())
ORDER BY k.created_at
"""
KEYS_SINCE = "SELECT id FROM api_keys WHERE created_at >= $1 ORDER BY created_at"
AUDITED_KEYS = """
SELECT DISTINCT payload::jsonb ->> 'subject' AS subject FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND payload::jsonb ->> 'action' = 'key.created'
"""
LIST_CAP = 20


async def import_approvals(src: Sources, params: dict[str, Any]) -> Outcome:
    """Every knowledge import applied in the last params.hours had as many approvals by distinct admin keys, none
    the importer's, as its policy asked when it was created (read from the audit chain)."""
    hours = float(params.get("hours", 24 * 90))
    events = await src.audit_events(IMPORT_ACTIONS, hours)
    by_set: dict[str, dict[str, Any]] = defaultdict(lambda: {"approvers": set(), "applied": False})
    for event in events:
        cs = by_set[event["subject"]]
        cs["tenant"] = event["tenant"]
        details = event.get("details") or {}
        if event["action"] == "knowledge_import_created":
            cs["importer"], cs["required"] = event["actor"], int(details.get("approvals_required", 0))
            cs["policy_digest"] = details.get("policy_digest")
        elif event["action"] == "knowledge_import_approved":
            cs["approvers"].add(event["actor"])
        else:
            cs["applied"], cs["decided_by"] = True, details.get("decided_by")
    applied = {k: v for k, v in by_set.items() if v["applied"]}
    evidence: dict[str, Any] = {"source": "audit chain: knowledge_import_* events", "window_hours": hours,
                                "applied": len(applied), "change_sets": []}
    if not applied:
        return Outcome("not_applicable", f"no knowledge import was applied in the last {hours:g} h", evidence)
    short: list[str] = []
    for cs_id, cs in sorted(applied.items()):
        approvers = cs["approvers"] - {cs.get("importer")}
        required = cs.get("required")
        row = {"id": cs_id, "tenant": cs.get("tenant"), "approvals_required": required,
               "approvals": len(approvers), "self_approved": cs.get("importer") in cs["approvers"],
               "policy_digest": cs.get("policy_digest")}
        if required is None:
            row["problem"] = "its creation is not in the window or the chain"
        elif len(approvers) < required or row["self_approved"]:
            row["problem"] = f"{len(approvers)} approvals of {required}"
        if "problem" in row:
            short.append(cs_id)
        if len(evidence["change_sets"]) < LIST_CAP or "problem" in row:
            evidence["change_sets"].append(row)
    evidence["uncovered"] = short
    return verdict(not short, f"all {len(applied)} applied imports had their approvals",
                   f"{len(short)} of {len(applied)} applied imports lack approvals: {', '.join(short[:5])}", evidence)


def _policy(src: Sources) -> tuple[Path, bytes, dict[str, Any]]:
    path = resolve(src.settings.knowledge_policy)
    raw = path.read_bytes()
    data = yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping")
    return path, raw, data


async def import_policy(src: Sources, params: dict[str, Any]) -> Outcome:
    """The knowledge-import policy in force asks human approval: by default (params.default_approvers) and for
    the listed high-risk domains (params.domains: {domain: approvers})."""
    path, raw, data = _policy(src)
    default = data.get("default") or {}
    domains = data.get("domains") or {}
    need_default = int(params.get("default_approvers", 1))
    evidence: dict[str, Any] = {"source": str(path), "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
                                "default": default, "domains": {}}
    wrong: list[str] = []
    if not default.get("approval_required", True) or int(default.get("approvers", 1)) < need_default:
        wrong.append(f"default: fewer than {need_default} approvers")
    for domain, need in (params.get("domains") or {}).items():
        rule = domains.get(domain, default)
        evidence["domains"][domain] = rule
        if not rule.get("approval_required", True) or int(rule.get("approvers", 1)) < int(need):
            wrong.append(f"{domain}: fewer than {need} approvers")
    evidence["violations"] = wrong
    return verdict(not wrong, "imports need human approval as required", "; ".join(wrong), evidence)


async def policy_versions(src: Sources, params: dict[str, Any]) -> Outcome:
    """Every import of the last params.hours names the policy version (digest) it was decided under; the evidence
    lists the versions in use and whether the file in force is one of them."""
    hours = float(params.get("hours", 24 * 90))
    path, raw, _ = _policy(src)
    current = "sha256:" + hashlib.sha256(raw).hexdigest()
    created = await src.audit_events(["knowledge_import_created"], hours)
    versions: dict[str, int] = defaultdict(int)
    unnamed = [e["subject"] for e in created if not (e.get("details") or {}).get("policy_digest")]
    for event in created:
        versions[(event.get("details") or {}).get("policy_digest") or "(none)"] += 1
    evidence = {"source": f"audit chain: knowledge_import_created; {path}", "policy_in_force": current,
                "window_hours": hours, "versions_used": dict(versions), "without_version": unnamed[:LIST_CAP]}
    if not created:
        return Outcome("not_applicable", f"no knowledge import in the last {hours:g} h", evidence)
    return verdict(not unnamed, f"{len(created)} imports name their policy version ({len(versions)} versions)",
                   f"{len(unnamed)} imports name no policy version", evidence)


async def key_expiry(src: Sources, params: dict[str, Any]) -> Outcome:
    """Every active admin key expires, at most params.max_days after it was created or last rotated."""
    max_days = int(params.get("max_days", 365))
    rows = await src.keys.fetch(ACTIVE_ADMIN_KEYS)
    wrong: list[dict[str, Any]] = []
    for r in rows:
        start = r["rotated_at"] or r["created_at"]
        if r["expires_at"] is None:
            wrong.append({"key": r["id"], "problem": "never expires"})
        elif r["expires_at"] - start > timedelta(days=max_days):
            wrong.append({"key": r["id"], "problem": f"valid {(r['expires_at'] - start).days} days"})
    evidence = {"source": "key table (api_keys): active admin keys", "max_days": max_days,
                "active_admin_keys": len(rows), "violations": len(wrong), "keys": wrong[:LIST_CAP]}
    if not rows:
        return Outcome("not_applicable", "no active admin key", evidence)
    return verdict(not wrong, f"all {len(rows)} active admin keys expire within {max_days} days",
                   f"{len(wrong)} of {len(rows)} active admin keys do not expire within {max_days} days", evidence)


async def key_changes_audited(src: Sources, params: dict[str, Any]) -> Outcome:
    """Every API key created since the audit chain began has its key.created event in the chain (the access log
    of who may use the fleet)."""
    began = await src.store.pool.fetchval("SELECT min(recorded_at) FROM audit_log")
    if began is None:
        return Outcome("not_applicable", "the audit chain holds no entries yet", {"source": "audit chain"})
    created = [r["id"] for r in await src.keys.fetch(KEYS_SINCE, began)]
    audited = {r["subject"] for r in await src.store.pool.fetch(AUDITED_KEYS)}
    missing = [k for k in created if f"key:{k}" not in audited]
    evidence = {"source": "key table (api_keys) against the audit chain's key.created events",
                "chain_began": began.isoformat().replace("+00:00", "Z"), "keys_created": len(created),
                "not_in_chain": len(missing), "keys": missing[:LIST_CAP]}
    return verdict(not missing, f"all {len(created)} keys created since the chain began are in it",
                   f"{len(missing)} of {len(created)} keys created since the chain began are not in it", evidence)


async def document_on_file(src: Sources, params: dict[str, Any]) -> Outcome:
    """A document (params.document: dpia, ropa, ...) is registered in MOE_COMPLIANCE_DOCUMENTS, readable, and
    not older than params.max_age_days."""
    name = str(params["document"])
    max_age = params.get("max_age_days")
    path = src.documents().get(name)
    evidence: dict[str, Any] = {"source": "MOE_COMPLIANCE_DOCUMENTS", "document": name, "path": path}
    if not src.documents():  # no register at all: the fleet knows of no document (as `backups` knows of no backup)
        return Outcome("not_applicable", f"no document register is configured (MOE_COMPLIANCE_DOCUMENTS): register "
                       f"the {name} there to have it checked", evidence)
    if not path:
        return Outcome("fail", f"no {name} is registered (MOE_COMPLIANCE_DOCUMENTS)", evidence)
    file = resolve(path)
    try:
        raw, mtime = file.read_bytes(), datetime.fromtimestamp(file.stat().st_mtime, UTC)
    except OSError as exc:
        return Outcome("fail", f"the {name} at {file} cannot be read: {exc.strerror}", evidence)
    age = (datetime.now(UTC) - mtime).days
    evidence.update({"sha256": hashlib.sha256(raw).hexdigest(), "modified": mtime.isoformat(), "age_days": age})
    ok = max_age is None or age <= int(max_age)
    return verdict(ok, f"{name} on file ({age} days old)", f"{name} is {age} days old (> {max_age})", evidence)
