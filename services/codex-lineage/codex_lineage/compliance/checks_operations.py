"""Checks on operations: the alert rules that watch the fleet (the file, and a Prometheus that loaded it when
one is configured), backups where the fleet knows of them (Postgres WAL archiving), and data health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from codex_lineage.compliance.outcome import Outcome, verdict
from codex_lineage.compliance.rules import resolve
from codex_lineage.compliance.sources import Sources

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
    """Postgres (the record, keys, change sets) is archived: WAL archiving on, the last archive younger than
    params.max_age_hours and no failure since. Not applicable when the fleet knows of no backup."""
    row = await src.store.pool.fetchrow(ARCHIVER)
    max_age = timedelta(hours=float(params.get("max_age_hours", 24)))
    last, failed = row["last_archived_time"], row["last_failed_time"]
    evidence = {"source": "Postgres: archive_mode, pg_stat_archiver", "archive_mode": row["mode"],
                "archived": int(row["archived_count"]), "last_archived": last.isoformat() if last else None,
                "failed": int(row["failed_count"]), "last_failed": failed.isoformat() if failed else None}
    if row["mode"] == "off":
        return Outcome("not_applicable", "no backup is known to the fleet (Postgres WAL archiving is off): "
                       "record your backups outside it", evidence)
    problems = []
    if last is None or datetime.now(UTC) - last > max_age:
        problems.append(f"no WAL archived within {max_age.total_seconds() / 3600:g} h")
    if failed is not None and (last is None or failed > last):
        problems.append("the latest archive attempt failed")
    return verdict(not problems, "WAL archiving is current", "; ".join(problems), evidence)


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
