"""The default retention of each topic (docs/audit.md), from moe_core.runtime.retention."""

from __future__ import annotations

from pathlib import Path

from moe_core.runtime.retention import DEFAULT_RETENTION_DAYS, topic_label


def table(repo: Path) -> str:
    by_days: dict[int, list[str]] = {}
    for kind, days in DEFAULT_RETENTION_DAYS.items():
        by_days.setdefault(days, []).append(topic_label(kind))
    lines = ["| topics | default retention |", "|---|---|"]
    lines += [f"| {', '.join(kinds)} | {'forever' if days == -1 else f'{days} days'} |"
              for days, kinds in by_days.items()]
    return "\n".join(lines)
