"""Checks on operations: the alert rules that watch the fleet (the file, and a Prometheus that loaded it when
one is configured), backups where the fleet knows of them (the backup tool's manifests, Postgres WAL archiving),
and data health."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from codex_lineage.compliance.outcome import Outcome, verdict
from codex_lineage.compliance.rules import resolve
from codex_lineage.compliance.sources import Sources
from moe_core.runtime import backup_manifest

ARCHIVER = """
SELECT current_setting('archive_mode') AS mode, archived_count, last_archived_time, failed_count,
       last_failed_time FROM pg_stat_archiver
"""


async def alert_rules(src: Sources, params: dict[str, Any]) -> Outcome:
    """The alert rule file defines params.alerts; with MOE_COMPLIANCE_PROMETHEUS_URL, that Prometheus has them
    loaded too."""
    wanted = list(params.get("alerts", []))
    path = resolve(src.settings.compliance_alert_rules)
    data = yaml.safe_load(path.read_text())
    defined = {r["alert"] for g in (data or {}).get("groups", []) for r in g.get("rules", []) if "alert" in r}
    evidence: dict[str, Any] = {"source": str(path), "required": wanted, "defined": sorted(defined)}
    missing = [a for a in wanted if a not in defined]
    loaded = await src.prometheus_rules()
    if loaded is not None:
        evidence["prometheus"] = src.settings.compliance_prometheus_url
        missing += [f"{a} (not loaded)" for a in wanted if a in defined and a not in loaded]
    evidence["missing"] = missing
    return verdict(not missing, f"{len(wanted)} alerts defined" + (" and loaded" if loaded is not None else ""),
                   f"alerts missing: {', '.join(missing)}", evidence)


async def backups(src: Sources, params: dict[str, Any]) -> Outcome:
    """The stores are backed up: the newest backup in MOE_COMPLIANCE_BACKUPS_DIR (its manifest.json, written last
    by the backup tool) is younger than params.max_age_hours and whole (every file it lists there, of its size);
    without that setting, Postgres's WAL archiving is current. Not applicable when the fleet knows of no backup."""
    max_age = timedelta(hours=float(params.get("max_age_hours", 24)))
    if src.settings.compliance_backups_dir:
        return await asyncio.to_thread(_backup_manifest, Path(src.settings.compliance_backups_dir), max_age)
    row = await src.store.pool.fetchrow(ARCHIVER)
    last, failed = row["last_archived_time"], row["last_failed_time"]
    evidence = {"source": "Postgres: archive_mode, pg_stat_archiver", "archive_mode": row["mode"],
                "archived": int(row["archived_count"]), "last_archived": last.isoformat() if last else None,
                "failed": int(row["failed_count"]), "last_failed": failed.isoformat() if failed else None}
    if row["mode"] == "off":
        return Outcome("not_applicable", "no backup is known to the fleet (Postgres WAL archiving is off, "
                       "MOE_COMPLIANCE_BACKUPS_DIR is not set): record your backups outside it", evidence)
    problems = []
    if last is None or datetime.now(UTC) - last > max_age:
        problems.append(f"no WAL archived within {max_age.total_seconds() / 3600:g} h")
    if failed is not None and (last is None or failed > last):
        problems.append("the latest archive attempt failed")
    return verdict(not problems, "WAL archiving is current", "; ".join(problems), evidence)


def _backup_manifest(root: Path, max_age: timedelta) -> Outcome:
    """The newest backup's manifest under `root`: its age and whether its files are all there."""
    evidence: dict[str, Any] = {"source": f"backup manifests under {root}"}
    folder = backup_manifest.newest(root)
    if folder is None:
        return verdict(False, "", f"no backup (no {backup_manifest.NAME}) under {root}", evidence)
    body = json.loads((folder / backup_manifest.NAME).read_text())
    made = datetime.fromisoformat(body["created_at"])
    missing = [n for n, meta in body.get("files", {}).items()
               if not (folder / n).is_file() or (folder / n).stat().st_size != meta["bytes"]]
    evidence |= {"backup": str(folder), "created_at": body["created_at"], "fleet_version": body.get("fleet_version"),
                 "files": len(body.get("files", {})), "missing_or_changed": missing[:20],
                 "audit_heads": {t: h["seq"] for t, h in body.get("audit_heads", {}).items()}}
    problems = []
    if datetime.now(UTC) - made > max_age:
        problems.append(f"the newest backup ({body['created_at']}) is older than "
                        f"{max_age.total_seconds() / 3600:g} h")
    if missing:
        problems.append(f"{len(missing)} of its files are missing or changed ({', '.join(missing[:3])})")
    return verdict(not problems, f"the newest backup ({body['created_at']}) is current and whole",
                   "; ".join(problems), evidence)


async def data_health(src: Sources, params: dict[str, Any]) -> Outcome:
    """No ingest run of the last params.hours was rated crit by the data-health engine."""
    hours = float(params.get("hours", src.settings.drift_window_h))
    summary = await src.drift(hours)
    evidence = {"source": "data health: graph-ingest runs and knowledge imports in the audit chain", **summary}
    if summary["runs"] == 0:
        return Outcome("not_applicable", f"no ingest run in the last {hours:g} h", evidence)
    crit = summary["by_severity"].get("crit", 0)
    return verdict(crit == 0, f"{summary['runs']} ingest runs, none critical",
                   f"{crit} of {summary['runs']} ingest runs critical", evidence)
