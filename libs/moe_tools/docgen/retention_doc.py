"""The default retention of each topic (docs/audit.md), from moe_core.runtime.retention."""

from __future__ import annotations

from pathlib import Path

from moe_core.runtime.retention import DEFAULT_RETENTION_DAYS


def topic_label(kind: str) -> str:
    """A Topics field as the docs name the topic: tasks_expert -> tasks.expert, ontology_gaps -> ontology-gaps."""
    return kind.replace("_", ".", 1) if kind.startswith("tasks_") else kind.replace("_", "-")


def table(repo: Path) -> str:
    by_days: dict[int, list[str]] = {}
    for kind, days in DEFAULT_RETENTION_DAYS.items():
        by_days.setdefault(days, []).append(topic_label(kind))
    lines = ["| topics | default retention |", "|---|---|"]
    lines += [f"| {', '.join(kinds)} | {'forever' if days == -1 else f'{days} days'} |"
              for days, kinds in by_days.items()]
    return "\n".join(lines)
