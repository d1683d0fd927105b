"""One PNG: latency added over the direct call (p50 and p99) and throughput, per path and concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt

COLORS = {"direct": "#7f7f7f", "litellm": "#d62728", "full": "#1f77b4", "trivial": "#2ca02c", "cache": "#9467bd"}


def draw(result: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    added = [r for r in result["added_latency_ms"] if not r["stream"]]
    summary = [r for r in result["summary"] if not r["stream"]]
    for target in dict.fromkeys(r["target"] for r in summary):
        color = COLORS.get(target, "#000000")
        rows = [r for r in added if r["target"] == target]
        if rows:
            xs = [r["concurrency"] for r in rows]
            axes[0].plot(xs, [r["p50"] for r in rows], "o-", color=color, label=target)
            axes[1].plot(xs, [r["p99"] for r in rows], "o-", color=color, label=target)
        rows_s = [r for r in summary if r["target"] == target]
        axes[2].plot([r["concurrency"] for r in rows_s], [r["throughput_rps"] for r in rows_s], "o-",
                     color=color, label=target)
    titles = ("added latency p50 (ms)", "added latency p99 (ms)", "throughput (req/s)")
    levels = sorted({r["concurrency"] for r in summary})
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("concurrency")
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_yscale("symlog", linthresh=1)  # log-like, but an added latency may be <= 0
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"MoE Sovereign Fleet vs LiteLLM, zero-latency model ({result['started_at'][:16]} UTC, "
                 f"{result['machine']['cores']} cores, profile {result['profile']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
