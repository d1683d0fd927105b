"""Where the fleet's CPU goes under load: py-spy (from .venv-bench) samples every service process while
the full pipeline is driven; the collapsed stacks are summarised per service and drawn as flame graphs
(`--profile SECONDS`; `make bench` profiles for PROFILE_SECONDS and keeps them as bench/results/latest-profile*)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench import flame
from bench.procs import BENCH_VENV

PY_SPY = BENCH_VENV / "bin" / "py-spy"
_LINE = re.compile(r":\d+\)$")
TOP = 12


def available() -> str | None:
    return None if PY_SPY.exists() else f"py-spy is not installed ({PY_SPY}; `make bench` installs it)"


def start(pids: dict[str, int], seconds: float, out_dir: Path, stem: str) -> list[tuple[str, subprocess.Popen[bytes],
                                                                                       Path]]:
    """One `py-spy record` per service (subprocesses included, e.g. the gateway's workers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    running = []
    for name, pid in pids.items():
        path = out_dir / f"{stem}-profile-{name}.txt"
        argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
                "--nonblocking", "--subprocesses", "--format", "raw", "--output", str(path)]
        running.append((name, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path))  # noqa: S603
    return running


def finish(running: list[tuple[str, subprocess.Popen[bytes], Path]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, proc, path in running:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0 or not path.exists():
            out[name] = {"error": (err or b"").decode(errors="replace")[-300:]}
            continue
        collapsed = path.read_text()
        graph = path.with_suffix(".svg")
        graph.write_text(flame.svg(collapsed, f"{name} under load (py-spy, 100 Hz)"))
        out[name] = summarise(collapsed) | {"file": path.name, "flame_graph": graph.name}
    return out


# Threads that only sleep: `--nonblocking` sampling cannot tell them from running ones (MOE_EXIT_WITH_PID's watcher
# sleeps 1 s between checks and showed as up to a fifth of an idle service's samples).
SLEEPING = ("exit_with.<locals>.watch (moe_core/runtime/service.py)",)


def summarise(collapsed: str) -> dict[str, Any]:
    """Top frames by own samples and by inclusive samples (frames without line numbers), sleeping threads left
    out."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        if frames[-1] in SLEEPING:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return {
        "samples": total,
        "own": [(f, round(100 * n / total, 1)) for f, n in own.most_common(TOP)] if total else [],
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in inclusive.most_common(TOP * 3)
                      if "(<frozen" not in f and not f.startswith("<module>")][:TOP * 2] if total else [],
    }


def markdown(profile: dict[str, Any]) -> str:
    lines = ["# Profile of the fleet under load", ""]
    for name, data in profile.items():
        lines += [f"## {name}", ""]
        if "error" in data:
            lines += [f"py-spy failed: {data['error']}", ""]
            continue
        lines += [f"{data['samples']} samples ({data['file']}; flame graph: {data.get('flame_graph', '-')}).", "",
                  "| own % | frame |", "|---|---|"]
        lines += [f"| {pct} | `{frame}` |" for frame, pct in data["own"]]
        lines += ["", "| inclusive % | frame |", "|---|---|"]
        lines += [f"| {pct} | `{frame}` |" for frame, pct in data["inclusive"]]
        lines.append("")
    return "\n".join(lines)
