"""Bar charts as inline SVG, laid out here and drawn by the template (templates/_chart.html): no script, no
external service, nothing the CSP would have to allow. One bar per day of the overview's period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WIDTH, HEIGHT, BOTTOM, TOP = 420, 150, 20, 14  # the drawing's size, room for the day labels and the top value


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the day, under the bar
    title: str  # the value, on hover and for screen readers


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: list[Bar]
    top: str  # the scale's largest value, written at the top
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM


def days(since: date, count: int) -> list[date]:
    return [since + timedelta(days=i) for i in range(count)]


def bar_chart(chart_id: str, title: str, values: dict[date, float | None], period: list[date], unit: str = "",
              digits: int = 0) -> Chart:
    """One bar per day of `period` (a day without a value: no bar), scaled to the largest value."""
    biggest = max((v for v in values.values() if v), default=0.0)
    slot = WIDTH / max(len(period), 1)
    room = HEIGHT - BOTTOM - TOP
    bars = []
    for i, day in enumerate(period):
        value = values.get(day) or 0.0
        h = room * value / biggest if biggest else 0.0
        bars.append(Bar(x=round(i * slot + slot * 0.15, 1), y=round(HEIGHT - BOTTOM - h, 1), width=round(slot * 0.7, 1),
                        height=round(h, 1), label=day.strftime("%d %b"),
                        title=f"{day.isoformat()}: {_fmt(value, digits)}{unit}"))
    return Chart(id=chart_id, title=title, bars=bars, top=f"{_fmt(biggest, digits)}{unit}")


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def overview_charts(per_day: list[dict[str, Any]], period: list[date]) -> list[Chart]:
    """The overview's charts from its per-day lines (GET /v1/requests/overview)."""
    by_day = {date.fromisoformat(line["day"]): line for line in per_day if line.get("day")}

    def of(name: str) -> dict[date, float | None]:
        return {d: line.get(name) for d, line in by_day.items()}
    return [bar_chart("chart-requests", "Requests", of("requests"), period),
            bar_chart("chart-errors", "Errors", of("errors"), period),
            bar_chart("chart-p50", "p50 latency", {d: (v or 0) / 1000 for d, v in of("p50_ms").items()}, period,
                      " s", 1),
            bar_chart("chart-p95", "p95 latency", {d: (v or 0) / 1000 for d, v in of("p95_ms").items()}, period,
                      " s", 1),
            bar_chart("chart-tokens", "Tokens", of("tokens"), period),
            bar_chart("chart-cost", "Cost", of("cost"), period, "", 4)]
