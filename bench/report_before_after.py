"""Before and after: issue 29's baseline run (bench/results/baseline.json, a trimmed copy of the `make bench`
result that issue quoted) beside this run, path by path: latency, messages, CPU per request by process, and the
stages' own counters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.config import REPO

BASELINE = REPO / "bench" / "results" / "baseline.json"
CELLS = (("full", 1), ("full", 64), ("trivial", 1), ("cache", 1))  # the columns of the per-process table
INFRA = ("kafka", "redis", "postgres", "chroma", "neo4j")
NOT_FLEET = ("llm", "litellm", "load generator", *INFRA)
OFF_PATH = ("cache-entries",)  # the planner's cache index and write-behind: batches that wait, off the request path


def load(path: Path | None = None) -> dict[str, Any] | None:
    path = path or BASELINE
    return json.loads(path.read_text()) if path.exists() else None


def lines(result: dict[str, Any], baseline: dict[str, Any] | None = None) -> list[str]:
    base = baseline if baseline is not None else load()
    if base is None:
        return []
    return ["### Before and after: issue 29's baseline run against this one", "",
            f"Before: {base.get('baseline_of', 'the baseline run')} ({base['machine']['cpu']}, "
            f"{base['machine']['cores']} cores). After: this run ({result['machine']['cpu']}). Each cell is "
            "*before → after*; `-` where a run has no figure (a process that did not exist, or nothing measured).",
            "", _headline(base, result), "", "CPU per request (ms, non-streaming) by process:", "",
            _by_process(base, result), "", "The stages' own counters per full request at concurrency 1 (handler "
            "time summed over the topics a stage consumes on the request's path, not the planner's cache index and "
            "write-behind; round trips to each store):", "",
            _by_stage(base, result)]


def _pair(before: Any, after: Any) -> str:
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
    return f"{fmt(before)} → {fmt(after)}"


def _summary(result: dict[str, Any], target: str, concurrency: int) -> dict[str, Any]:
    return next((r for r in result["summary"] if r["target"] == target and not r["stream"]
                 and r["concurrency"] == concurrency), {})


def _cpu(result: dict[str, Any], target: str, concurrency: int) -> dict[str, float]:
    return _summary(result, target, concurrency).get("cpu_ms_per_request") or {}


def _all(cpu: dict[str, float]) -> float | None:
    """Every process but the inference server, LiteLLM and the load generator (the targets' sum)."""
    return round(sum(v for k, v in cpu.items() if k not in ("llm", "litellm", "load generator")), 1) if cpu else None


def _added_p50(result: dict[str, Any], target: str, concurrency: int) -> float | None:
    row = next((r for r in result.get("added_latency_ms") or [] if r["target"] == target and not r["stream"]
                and r["concurrency"] == concurrency), None)
    return row["p50"] if row else None


def _headline(base: dict[str, Any], result: dict[str, Any]) -> str:
    rows = []
    for path in ("full", "trivial", "cache"):
        messages = [(r.get("kafka_messages_per_request") or {}).get(path, {}).get("total") for r in (base, result)]
        rows.append([path, _pair(_added_p50(base, path, 1), _added_p50(result, path, 1)),
                     _pair(_all(_cpu(base, path, 1)), _all(_cpu(result, path, 1))),
                     _pair(_all(_cpu(base, path, 64)), _all(_cpu(result, path, 64))), _pair(*messages)])
    sustained = [(r.get("sustained") or {}).get("throughput_rps") for r in (base, result)]
    return _table(["path", "added p50 ms, c=1", "CPU ms / request, all processes, c=1", "the same, c=64",
                   "Kafka messages / request"], rows) + \
        f"\n\nSustained full pipeline (req/s at concurrency 64): {_pair(*sustained)}."


def _by_process(base: dict[str, Any], result: dict[str, Any]) -> str:
    cells = [(t, c) for t, c in CELLS if _cpu(base, t, c) or _cpu(result, t, c)]
    processes = sorted({p for r in (base, result) for t, c in cells for p in _cpu(r, t, c)} - set(NOT_FLEET))
    processes += [p for p in INFRA if any(p in _cpu(r, t, c) for r in (base, result) for t, c in cells)]
    rows = [[p, *[_pair(_cpu(base, t, c).get(p), _cpu(result, t, c).get(p)) for t, c in cells]] for p in processes]
    rows.append(["all processes", *[_pair(_all(_cpu(base, t, c)), _all(_cpu(result, t, c))) for t, c in cells]])
    return _table(["process", *[f"{t} c={c}" for t, c in cells]], rows)


def _stages(result: dict[str, Any], target: str, concurrency: int) -> dict[str, Any]:
    return next((s["services"] for s in result.get("stages") or [] if s["target"] == target
                 and s["concurrency"] == concurrency), {})


def _stage_figures(service: dict[str, Any] | None) -> tuple[float | None, ...]:
    if not service:
        return (None, None, None, None)
    stores = service.get("stores") or {}
    handler = round(sum(h.get("ms_per_request") or 0 for topic, h in (service.get("handlers") or {}).items()
                        if topic not in OFF_PATH), 1)
    return (handler, *[(stores.get(s) or {}).get("per_request") for s in ("redis", "chroma", "neo4j")])


def _by_stage(base: dict[str, Any], result: dict[str, Any]) -> str:
    before, after = _stages(base, "full", 1), _stages(result, "full", 1)
    rows = []
    for name in sorted(set(before) | set(after)):
        pairs = zip(_stage_figures(before.get(name)), _stage_figures(after.get(name)), strict=True)
        rows.append([name, *[_pair(b, a) for b, a in pairs]])
    return _table(["stage", "handler ms", "Redis round trips", "Chroma requests", "Neo4j queries"], rows)


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
                      *("| " + " | ".join(row) + " |" for row in rows)])
