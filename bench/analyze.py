"""From cells and Kafka traces to the report's numbers: path checks, medians across runs, added
latency against the direct baseline (paired within each run), ratios to LiteLLM, hops, targets."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench import kafka_trace, stages
from bench.loadgen import Cell
from bench.scenarios import PATHS
from bench.stats import median_of, median_summary, summary_ms

Key = tuple[str, bool, int]  # (target, stream, concurrency)


def verify_cells(cells: list[Cell], traces: dict[str, dict[str, Any]]) -> None:
    """Mark every fleet request whose own Kafka messages show another path than its cell's."""
    for cell in cells:
        check = PATHS[cell.target].kafka_check
        if check is None:
            continue
        for record in cell.records:
            if record.error is None and record.response_id:
                reason = check(traces.get(record.response_id, {"tasks": {}, "results": {}, "messages": {}}))
                if reason:
                    cell.mismatches[record.response_id] = f"path mismatch: {reason}"


def group(cell_stats: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for stats in cell_stats:
        if stats["run"]:  # run 0 is the sustained cell
            groups[(stats["target"], stats["stream"], stats["concurrency"])].append(stats)
    return groups


def summarize(groups: dict[Key, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for (target, stream, concurrency), runs in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        ttfts = [r["ttft_ms"] for r in runs if r["ttft_ms"] and r["ttft_ms"]["n"]]
        rows.append({
            "target": target, "stream": stream, "concurrency": concurrency, "runs": len(runs),
            "requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "throughput_rps": median_of(r["throughput_rps"] for r in runs),
            "latency_ms": median_summary([r["latency_ms"] for r in runs if r["latency_ms"]["n"]]),
            "ttft_ms": median_summary(ttfts) if ttfts else None,
            "cpu_ms_per_request": _median_cpu([r.get("cpu_ms_per_request") or {} for r in runs]),
        })
    return rows


def _median_cpu(runs: list[dict[str, float]]) -> dict[str, float | None]:
    groups = sorted({g for r in runs for g in r})
    return {g: median_of(r.get(g, 0.0) for r in runs) for g in groups}


def added_latency(groups: dict[Key, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per path: latency minus the direct call's, computed within each run, median across runs."""
    rows = []
    for (target, stream, concurrency), runs in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        if target == "direct":
            continue
        direct = {r["run"]: r for r in groups.get(("direct", stream, concurrency), [])}
        row: dict[str, Any] = {"target": target, "stream": stream, "concurrency": concurrency}
        for pct in ("p50", "p90", "p99"):
            row[pct] = median_of(_minus(r["latency_ms"], direct.get(r["run"]), "latency_ms", pct) for r in runs)
        if stream:
            row["ttft_p50"] = median_of(_minus(r["ttft_ms"], direct.get(r["run"]), "ttft_ms", "p50") for r in runs)
        rows.append(row)
    return rows


def litellm_ratios(added: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our added latency divided by LiteLLM's, same stream mode and concurrency."""
    lite = {(r["stream"], r["concurrency"]): r for r in added if r["target"] == "litellm"}
    rows = []
    for row in added:
        ref = lite.get((row["stream"], row["concurrency"]))
        if row["target"] == "litellm" or ref is None:
            continue
        rows.append({"target": row["target"], "stream": row["stream"], "concurrency": row["concurrency"],
                     **{pct: _ratio(row[pct], ref[pct]) for pct in ("p50", "p90", "p99")}})
    return rows


def hop_table(cells: list[Cell], traces: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    samples: dict[Key, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        if not PATHS[cell.target].fleet or not cell.run:
            continue
        for record in cell.records:
            trace = traces.get(record.response_id or "")
            if trace and record.error is None and record.response_id not in cell.mismatches:
                for hop, seconds in kafka_trace.hops(trace).items():
                    samples[(cell.target, cell.stream, cell.concurrency)][hop].append(seconds)
    rows = []
    for key in sorted(samples, key=_order):
        hops = {hop: summary_ms(values) for hop, values in samples[key].items()}
        ordered = {h: hops[h] for h in kafka_trace.HOPS if h in hops}
        rows.append({"target": key[0], "stream": key[1], "concurrency": key[2], "hops": ordered})
    return rows


def messages_per_request(cells: list[Cell], traces: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per fleet path: Kafka messages per request by topic (median over its requests), and the total."""
    per_path: dict[str, list[dict[str, int]]] = defaultdict(list)
    for cell in cells:
        if PATHS[cell.target].fleet and cell.run:
            per_path[cell.target] += [traces[r.response_id]["messages"] for r in cell.records
                                      if r.response_id in traces and r.error is None]
    out: dict[str, dict[str, float]] = {}
    for path, counts in per_path.items():
        topics = sorted({t for c in counts for t in c})
        row = {t: median_of(c.get(t, 0) for c in counts) or 0.0 for t in topics}
        row["total"] = median_of(sum(c.values()) for c in counts) or 0.0
        out[path] = row
    return out


def targets(summary: list[dict[str, Any]], added: list[dict[str, Any]], tokens: dict[str, Any],
            sustained: dict[str, Any] | None, available: dict[str, str | None],
            memory_growth: dict[str, Any] | None = None,
            streams: list[dict[str, Any]] | None = None, soak: dict[str, Any] | None = None,
            bare: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Issue 29's targets (with issue 13's for throughput of the trivial path, memory and tokens, and issue 52's
    for the fleet without the record and learning: `bare`), each with the measured value (at concurrency 1,
    non-streaming, unless said)."""
    def add(target: str, pct: str, concurrency: int = 1) -> float | None:
        return next((r[pct] for r in added if r["target"] == target and not r["stream"]
                     and r["concurrency"] == concurrency), None)

    def latency(target: str, pct: str) -> float | None:
        return next((r["latency_ms"].get(pct) for r in summary if r["target"] == target and not r["stream"]
                     and r["concurrency"] == 1), None)

    def best_rps(target: str) -> float | None:
        return max((r["throughput_rps"] or 0 for r in summary if r["target"] == target and not r["stream"]),
                   default=None)

    def token_ratio(path: str) -> float | None:
        return (tokens.get(path) or {}).get("ratio")

    available = {"soak": "the soak runs after the benchmark and adds its verdict (none with make bench SOAK=0)",
                 "bare": "no cells without the record and learning in this run (--no-bare, or neither ran)",
                 **available}
    full_rps = (sustained or {}).get("throughput_rps")
    if full_rps is None:
        full_rps = best_rps("full")
    lite_rps = best_rps("litellm")
    grown = [v for v in (memory_growth or {}).values() if v.get("growth_mb") is not None]
    # a service is flat within 20 MB or within 10 %; the figure is the largest growth of one that is not (if any)
    over = [v for v in grown if v["growth_mb"] > 20 and (v.get("growth_pct") or 0) > 10]
    worst = max(over or grown, key=lambda v: v["growth_mb"], default=None)
    rows = [
        _target("CPU per full request, all processes incl. infrastructure", "<= 40 ms", full_cpu(summary),
                lambda v: v <= 40, "full"),
        _target("CPU per full request, all processes, without the record and learning", "<= 25 ms",
                full_cpu(bare["summary"]) if bare else None, lambda v: v <= 25, "bare"),
        _target("full pipeline throughput (sustained)", ">= 40 req/s", full_rps, lambda v: v >= 40, "full"),
        _target("full pipeline added latency p50", "<= 40 ms", add("full", "p50"), lambda v: v <= 40, "full"),
        _target("trivial path added latency p50", "<= LiteLLM's", add("trivial", "p50"),
                lambda v: (ref := add("litellm", "p50")) is not None and v <= ref, "trivial"),
        _target("trivial path throughput", ">= LiteLLM's", best_rps("trivial"),
                lambda v: lite_rps is not None and v >= lite_rps, "trivial"),
        _target("cache hit latency p50", "<= 3 ms", latency("cache", "p50"), lambda v: v <= 3, "cache"),
        _target("concurrent SSE streams held, trivial path, 0 frames dropped", ">= 256", held_streams(streams),
                lambda v: v >= 256, "trivial"),
        _target("memory flat across the run (largest growth of one service, MB)", "<= 10 % or <= 20 MB",
                worst["growth_mb"] if worst else None,
                lambda _v: worst is not None and not over, "full"),
        _target("memory flat in the soak (largest second-half growth of a fleet service, MB)",
                "every fleet service flat", (soak or {}).get("largest_growth_mb"),
                lambda _v: bool((soak or {}).get("fleet_flat")), "soak"),
        _target("token overhead, full pipeline", "<= 8x", token_ratio("full"), lambda v: v <= 8, "full"),
        _target("token overhead, fast path", "1x", token_ratio("trivial"), lambda v: v <= 1.0, "trivial"),
    ]
    for row in rows:
        if row["measured"] is None:
            row["note"] = available.get(row.pop("path")) or "not measured"
        else:
            row.pop("path")
    return rows


def held_streams(streams: list[dict[str, Any]] | None) -> int | None:
    """The most trivial-path streams held at once in a cell where every one was held and no frame dropped or
    reordered (0 when no cell was clean; None: no stream cell ran)."""
    cells = [s for s in streams or [] if s["target"] == "trivial"]
    if not cells:
        return None
    clean = [s["streams"] for s in cells
             if s["held"] == s["streams"] and not s["dropped_frames"] and not s["reordered_frames"]]
    return max(clean, default=0)


def targets_of(result: dict[str, Any], fleet_services: set[str] | None = None) -> list[dict[str, Any]]:
    """The targets of a stored result (bench render recomputes them, so the table follows the current goals)."""
    available = {name: p.get("reason") for name, p in result["paths"].items()}
    growth = {k: v for k, v in (result.get("memory_growth") or {}).items()
              if k not in BASELINE_GROUPS and (fleet_services is None or k in fleet_services)}
    return targets(result["summary"], result["added_latency_ms"], result["tokens"], result.get("sustained"),
                   available, growth, result.get("streams"), result.get("soak"), result.get("bare"))


BARE_KEYS = ("namespace", "duration_s", "summary", "added_latency_ms", "sustained", "tokens", "stages",
             "kafka_messages_per_request", "skipped_cells", "idle_cores", "fleet_warm", "cells")


def bare_part(bare: dict[str, Any]) -> dict[str, Any]:
    """What a result keeps of its bare pass (the same cells on a fleet without the record and learning)."""
    return {k: bare.get(k) for k in BARE_KEYS} | {"paths": {n: p for n, p in bare["paths"].items()
                                                            if n not in ("litellm",)}}


def soak_summary(soak: dict[str, Any]) -> dict[str, Any]:
    """What the targets table keeps of a soak (bench.soak adds it to latest.json): whether every fleet service
    was flat over the second half, and the largest growth among them."""
    fleet = {name: soak["verdicts"].get(name) or {} for name in soak["fleet"]}
    growth = {name: v["second_half_growth_mb"] for name, v in fleet.items()
              if v.get("second_half_growth_mb") is not None}
    worst = max(growth, key=lambda name: growth[name], default=None)
    return {"started_at": soak["started_at"], "seconds": soak["config"]["seconds"],
            "requests": soak["traffic"]["total"], "fleet_flat": soak["fleet_flat"],
            "largest_growth_mb": growth[worst] if worst else None, "largest_growth_service": worst}


INFRA_GROUPS = ("kafka", "redis", "postgres", "chroma", "neo4j")
BASELINE_GROUPS = ("llm", "litellm", "load generator")


def full_cpu(summary: list[dict[str, Any]]) -> float | None:
    """CPU ms per full request at concurrency 1, non-streaming: every fleet process plus the
    infrastructure (the inference server, LiteLLM and the load generator are not the fleet's)."""
    row = next((r for r in summary if r["target"] == "full" and not r["stream"] and r["concurrency"] == 1), None)
    if row is None or not row["cpu_ms_per_request"]:
        return None
    return round(sum(v or 0.0 for k, v in row["cpu_ms_per_request"].items() if k not in BASELINE_GROUPS), 1)


def stage_table(cell_stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fleet path, non-streaming, per concurrency: the per-stage breakdown averaged over the runs."""
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for stats in cell_stats:
        if stats.get("stages") and not stats["stream"] and stats["run"]:
            grouped[(stats["target"], stats["concurrency"])].append(stats["stages"])
    return [{"target": t, "concurrency": c, "services": stages.merge(rows)}
            for (t, c), rows in sorted(grouped.items(), key=lambda kv: _order((kv[0][0], False, kv[0][1])))]


def _target(name: str, goal: str, value: float | None, ok: Any, path: str) -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": value, "met": None if value is None else bool(ok(value)),
            "path": path}


def _minus(ours: dict[str, Any] | None, direct: dict[str, Any] | None, key: str, pct: str) -> float | None:
    if not ours or not direct or not direct.get(key):
        return None
    a, b = ours.get(pct), direct[key].get(pct)
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else round(a / b, 2)


def _order(key: Key) -> tuple[int, bool, int]:
    names = list(PATHS)
    return (names.index(key[0]) if key[0] in names else 99, key[1], key[2])
